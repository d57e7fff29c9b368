"""RQ job functions and the pump that schedules them.

A feedback event is never one RQ job (RQ costs ~0.7 ms to enqueue and ~6 ms to run a
job here). An ingest job drains a namespace's inbox batch after batch for up to
`ingest_budget_s`, then returns; the pump, a thread in every worker process, keeps
one ingest job per worker queued while there is backlog and a release job while
probations are due and an analysis job when the event clock has moved a policy
interval past the last analysis. One pump acts per tick across all workers (a Redis
lock).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue, Worker

from feedbackguard import keys
from feedbackguard.pipeline import inbox, ledger, runtime
from feedbackguard.pipeline.engine import Pipeline

log = logging.getLogger(__name__)

# In priority order (RQ serves the first non-empty queue): work already decided is
# finished before new work is taken. With ingest first, a worker under sustained load
# always finds an ingest job waiting and releases starve: the backlog moves from the
# capped inbox into the uncapped pending set (docs/benchmarks.md, "Soak").
QUEUES = (keys.RELEASE_QUEUE, keys.ANALYSIS_QUEUE, keys.INGEST_QUEUE)
# An RQ job that runs past this is considered stuck by RQ; ours stop long before.
JOB_TIMEOUT_S = 600


def ingest_job(namespace: str) -> int:
    """Drain the namespace's inbox for at most the ingest budget; events processed."""
    rt = runtime.current()
    deadline = time.monotonic() + rt.settings.ingest_budget_s
    total = 0
    while time.monotonic() < deadline:
        outcome = rt.pipeline.ingest_batch(
            namespace, rt.consumer, block_ms=rt.settings.read_block_ms or None
        )
        total += outcome.entries
        if outcome.entries == 0:
            break
        log.info("%s: %s", namespace, outcome, extra={"namespace": namespace})
    return total


def release_job(namespace: str) -> int:
    """Admit every item of the namespace whose probation has ended."""
    rt = runtime.current()
    total = 0
    while True:
        released = rt.pipeline.release(namespace)
        total += released
        if released:
            log.info("%s: released %d", namespace, released, extra={"namespace": namespace})
        if released == 0 and not rt.redis.exists(keys.releasing(namespace)):
            return total


def analysis_job(namespace: str) -> int:
    """Run the analysers over the namespace's window; events whose status changed."""
    outcome = runtime.current().pipeline.analyse(namespace)
    return sum(outcome.changed.values())


def namespaces(r: redis.Redis[bytes]) -> list[str]:
    return sorted(m.decode() for m in r.smembers(keys.namespaces()))


def release_due(pipeline: Pipeline, namespace: str) -> bool:
    """Is any pending item's probation over, or a crashed release unfinished?"""
    r = pipeline.r
    if r.exists(keys.releasing(namespace)):
        return True
    horizon = pipeline.release_horizon(namespace)
    return bool(r.zrangebyscore(keys.pending(namespace), "-inf", horizon, start=0, num=1))


def analysis_due(pipeline: Pipeline, namespace: str) -> bool:
    """Has the event clock moved the policy's interval past the last analysis?"""
    if not pipeline.analysers:
        return False
    r = pipeline.r
    interval = pipeline.policies.current().policy.analysis.interval_s
    return ledger.clock(r, namespace) - ledger.analysed(r, namespace) >= interval


def pump_tick(pipeline: Pipeline, workers: int, lock_ms: int) -> int:
    """Queue the jobs that are due now; returns how many were queued."""
    r = pipeline.r
    if not r.set(keys.pump_lock(), 1, nx=True, px=lock_ms):
        return 0
    ingest_q = Queue(keys.INGEST_QUEUE, connection=r)
    release_q = Queue(keys.RELEASE_QUEUE, connection=r)
    analysis_q = Queue(keys.ANALYSIS_QUEUE, connection=r)
    queued = 0
    for namespace in namespaces(r):
        if inbox.backlog(r, namespace) and ingest_q.count < workers:
            ingest_q.enqueue(ingest_job, namespace, job_timeout=JOB_TIMEOUT_S, result_ttl=0)
            queued += 1
        if release_q.count == 0 and release_due(pipeline, namespace):
            release_q.enqueue(release_job, namespace, job_timeout=JOB_TIMEOUT_S, result_ttl=0)
            queued += 1
        if analysis_q.count == 0 and analysis_due(pipeline, namespace):
            analysis_q.enqueue(analysis_job, namespace, job_timeout=JOB_TIMEOUT_S, result_ttl=0)
            queued += 1
    return queued


def advance_clocks(r: redis.Redis[bytes], now: float) -> None:
    """Move every namespace's clock to `now` (settings `clock = "wall"`)."""
    pipe = r.pipeline(transaction=False)
    for namespace in namespaces(r):
        ledger.advance_clock(pipe, namespace, now)
    pipe.execute()


def worker_count(r: redis.Redis[bytes]) -> int:
    return max(1, Worker.count(connection=r, queue=Queue(keys.INGEST_QUEUE, connection=r)))


class Pump(threading.Thread):
    """Runs `pump_tick` every `interval_s` until stopped."""

    def __init__(self, pipeline: Pipeline, interval_s: float, wall_clock: bool) -> None:
        super().__init__(name="feedbackguard-pump", daemon=True)
        self.pipeline = pipeline
        self.wall_clock = wall_clock
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        lock_ms = max(1, int(self.interval_s * 1000 * 0.9))
        while not self.stopped.wait(self.interval_s):
            try:
                if self.wall_clock:
                    advance_clocks(self.pipeline.r, time.time())
                pump_tick(self.pipeline, worker_count(self.pipeline.r), lock_ms)
            except redis.RedisError:
                log.exception("pump tick failed; retrying next tick")

    def stop(self) -> None:
        self.stopped.set()
