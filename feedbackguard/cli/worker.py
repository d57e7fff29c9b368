"""`feedbackguard worker`: an RQ worker on the ingest, release and analysis queues."""

from __future__ import annotations

import gc
import logging
import time
from types import FrameType

import click
import redis
from rq import Queue, SimpleWorker

from feedbackguard.cli.options import log_level_option
from feedbackguard.logs import configure
from feedbackguard.pipeline import jobs, runtime
from feedbackguard.settings import Settings
from feedbackguard.store import Store

log = logging.getLogger(__name__)
# Pause before serving again after RQ's loop ended on a lost Redis connection.
REDIS_RETRY_S = 1.0


class _Worker(SimpleWorker):
    """RQ's in-process worker, remembering whether SIGTERM/SIGINT asked it to stop."""

    stop_signalled = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


@click.command()
@click.option("--burst", is_flag=True, help="Drain every queue and inbox, then exit.")
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    type=click.Choice(jobs.QUEUES),
    help="Queues to serve (repeatable; default: all).",
)
@log_level_option
def worker(burst: bool, queue_names: tuple[str, ...], log_level: str | None) -> None:
    """Process feedback: ingest batches, release ended probations, run analysis.

    Jobs run in the worker process itself (RQ's SimpleWorker): each job is a batch
    loop of seconds, so forking per job would only cost. Start as many as you have
    cores; they share the work through Redis. At INFO it logs a line per batch
    (decided, by status), per release and per analysis step.
    """
    with Store.from_settings(Settings(), create=True):
        pass  # a worker may start on a fresh home: it makes the store and its key
    rt = runtime.current()
    level = (log_level or rt.settings.log_level).upper()
    configure(level)
    # RQ's own lines (a job started, a job done) repeat ours: only at DEBUG.
    rq_level = "WARNING" if level == "INFO" else level
    rq = rt.control
    queues = [Queue(name, connection=rq) for name in (queue_names or jobs.QUEUES)]
    log.info("worker serving %s", ", ".join(q.name for q in queues))
    rq_worker = _Worker(queues, connection=rq)
    # What exists now (modules, the runtime) lives as long as the process: frozen out
    # of the garbage collector's sight, its full collections no longer walk ~190,000
    # objects each time (ingest: 114 against 76 us of worker CPU per event;
    # benchmarks/ingest_paths.py, "ingest_gc").
    gc.freeze()
    if burst:
        while jobs.pump_tick(rt.pipeline, rq, workers=1, lock_ms=1) or any(q.count for q in queues):
            rq_worker.work(burst=True, logging_level=rq_level)
        return
    pump = jobs.Pump(
        rt.pipeline, rq, rt.settings.pump_interval_s, wall_clock=rt.settings.clock == "wall"
    )
    pump.start()
    try:
        while True:
            try:
                rq_worker.work(logging_level=rq_level)
            except redis.ConnectionError as exc:  # raised by RQ's teardown, Redis gone
                log.warning("lost Redis: %s", exc)
            if rq_worker.stop_signalled:
                return
            # RQ's loop ends on an error it does not handle, such as Redis going away
            # mid-job; a restarted Redis (AOF) still holds the unacknowledged batch,
            # so serve again rather than leave the deployment one worker short.
            log.warning("worker loop ended; serving again in %g s", REDIS_RETRY_S)
            time.sleep(REDIS_RETRY_S)
            rq_worker = _Worker(queues, connection=rq)
    finally:
        pump.stop()
