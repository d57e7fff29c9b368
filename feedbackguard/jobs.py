"""RQ job functions and the pump that schedules them.

A feedback event is never one RQ job (RQ costs ~0.7 ms to enqueue and ~6 ms to run a
job here). An ingest job drains a namespace's inbox batch after batch for up to
`ingest_budget_s`, then returns; the pump, a thread in every worker process, keeps
one ingest job per worker queued while there is backlog and a release job while
probations are due. One pump acts per tick across all workers (a Redis lock).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue, Worker

from feedbackguard import inbox, keys, ledger, runtime

log = logging.getLogger(__name__)

INGEST_QUEUE = "fg-ingest"
RELEASE_QUEUE = "fg-release"
ANALYSIS_QUEUE = "fg-analysis"
QUEUES = (INGEST_QUEUE, RELEASE_QUEUE, ANALYSIS_QUEUE)
PUMP_LOCK = f"{keys.PREFIX}:pump:lock"
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
    return total


def release_job(namespace: str) -> int:
    """Admit every item of the namespace whose probation has ended."""
    rt = runtime.current()
    total = 0
    while True:
        released = rt.pipeline.release(namespace)
        total += released
        if released == 0 and not rt.redis.exists(ledger.releasing_key(namespace)):
            return total


def namespaces(r: redis.Redis[bytes]) -> list[str]:
    return sorted(m.decode() for m in r.smembers(keys.namespaces()))


def release_due(r: redis.Redis[bytes], namespace: str) -> bool:
    """Is any pending item's probation over, or a crashed release unfinished?"""
    if r.exists(ledger.releasing_key(namespace)):
        return True
    now = ledger.clock(r, namespace)
    return bool(r.zrangebyscore(ledger.pending_key(namespace), "-inf", now, start=0, num=1))


def pump_tick(r: redis.Redis[bytes], workers: int, lock_ms: int) -> int:
    """Queue the jobs that are due now; returns how many were queued."""
    if not r.set(PUMP_LOCK, 1, nx=True, px=lock_ms):
        return 0
    ingest_q = Queue(INGEST_QUEUE, connection=r)
    release_q = Queue(RELEASE_QUEUE, connection=r)
    queued = 0
    for namespace in namespaces(r):
        if inbox.backlog(r, namespace) and ingest_q.count < workers:
            ingest_q.enqueue(ingest_job, namespace, job_timeout=JOB_TIMEOUT_S, result_ttl=0)
            queued += 1
        if release_q.count == 0 and release_due(r, namespace):
            release_q.enqueue(release_job, namespace, job_timeout=JOB_TIMEOUT_S, result_ttl=0)
            queued += 1
    return queued


def worker_count(r: redis.Redis[bytes]) -> int:
    return max(1, Worker.count(connection=r, queue=Queue(INGEST_QUEUE, connection=r)))


class Pump(threading.Thread):
    """Runs `pump_tick` every `interval_s` until stopped."""

    def __init__(self, r: redis.Redis[bytes], interval_s: float) -> None:
        super().__init__(name="feedbackguard-pump", daemon=True)
        self.r = r
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        lock_ms = max(1, int(self.interval_s * 1000 * 0.9))
        while not self.stopped.wait(self.interval_s):
            try:
                pump_tick(self.r, worker_count(self.r), lock_ms)
            except redis.RedisError:
                log.exception("pump tick failed; retrying next tick")

    def stop(self) -> None:
        self.stopped.set()
