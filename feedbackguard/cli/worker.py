"""`feedbackguard worker`: an RQ worker on the ingest, release and analysis queues."""

from __future__ import annotations

import logging

import click
from rq import Queue, SimpleWorker

from feedbackguard import jobs, runtime


@click.command()
@click.option("--burst", is_flag=True, help="Drain every queue and inbox, then exit.")
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    type=click.Choice(jobs.QUEUES),
    help="Queues to serve (repeatable; default: all).",
)
@click.option("--log-level", default="WARNING", show_default=True)
def worker(burst: bool, queue_names: tuple[str, ...], log_level: str) -> None:
    """Process feedback: ingest batches, release ended probations, run analysis.

    Jobs run in the worker process itself (RQ's SimpleWorker): each job is a batch
    loop of seconds, so forking per job would only cost. Start as many as you have
    cores; they share the work through Redis.
    """
    logging.basicConfig(level=log_level.upper())
    rt = runtime.current()
    queues = [Queue(name, connection=rt.redis) for name in (queue_names or jobs.QUEUES)]
    rq_worker = SimpleWorker(queues, connection=rt.redis)
    if burst:
        while jobs.pump_tick(rt.pipeline, workers=1, lock_ms=1) or any(q.count for q in queues):
            rq_worker.work(burst=True, logging_level=log_level.upper())
        return
    pump = jobs.Pump(
        rt.pipeline, rt.settings.pump_interval_s, wall_clock=rt.settings.clock == "wall"
    )
    pump.start()
    try:
        rq_worker.work(logging_level=log_level.upper())
    finally:
        pump.stop()
