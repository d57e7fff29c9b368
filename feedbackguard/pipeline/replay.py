"""Replay a recorded stream of events through the real pipeline, on event time.

Events go into the inbox exactly as capture puts them there; workers (started here
unless told otherwise) decide them; at the end the event clock is moved past the
last probation so that every event reaches a final status, as live traffic would
once time passed. Workers that replay does not start itself must run with
`FEEDBACKGUARD_CLOCK=events`, or they would end probations on wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pydantic
import redis

from feedbackguard import inbox_writer, keys
from feedbackguard.connection import client_from_url, redis_url
from feedbackguard.events import AccountDates, FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.runtime import default_analysers
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

# Events sent to Redis per pipelined round trip.
PUSH_CHUNK = 1000
# Records read per MGET when writing the decisions file.
READ_CHUNK = 2000
POLL_S = 0.02
# Workers that replay starts serve a stream that replay pushes itself and holds back
# while analysis lags: an ingest job that waited for more entries (`read_block_ms`), or
# a pump ticking every half second, would leave the worker idle at every analysis run
# (over a month, ~100 runs: about a fifth of the replay's time; docs/benchmarks.md,
# "Replay a month"). Unless the environment says otherwise:
REPLAY_WORKER_ENV = {"FEEDBACKGUARD_READ_BLOCK_MS": "0", "FEEDBACKGUARD_PUMP_INTERVAL_S": "0.05"}
WORKER_STOP_TIMEOUT_S = 10.0

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total)"""


class ReplayFileError(ValueError):
    """The replay file has lines that are not valid events."""


@dataclass
class ReplayReport:
    events: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def read_events(
    path: Path, max_errors: int = 10, dates: AccountDates | None = None
) -> list[FeedbackEvent]:
    """Every event of a JSONL file, or a ReplayFileError naming the bad lines (account
    creation dates are checked against `dates`, by default the default range)."""
    dates = dates if dates is not None else AccountDates()
    events: list[FeedbackEvent] = []
    errors: list[str] = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                events.append(FeedbackEvent.from_json(line, dates))
            except pydantic.ValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or '(line)'}: {err['msg']}"
                    for err in exc.errors()
                )
                errors.append(f"line {number}: {fields}")
                if len(errors) >= max_errors:
                    break
    if errors:
        raise ReplayFileError(f"{path}: invalid events:\n  " + "\n  ".join(errors))
    return events


def push(
    r: redis.Redis[bytes],
    events: Sequence[FeedbackEvent],
    cap: int,
    hold: Callable[[float], None] = lambda t: None,
) -> None:
    """Append events to their inboxes in chunks; `hold(t)` is called before a chunk
    whose events reach event time `t` (replay uses it to let analysis keep up), and
    no chunk is sent while its inbox holds more than `cap` undecided events."""
    for start in range(0, len(events), PUSH_CHUNK):
        chunk = events[start : start + PUSH_CHUNK]
        hold(max(e.received_at.timestamp() for e in chunk))
        namespaces = {e.namespace for e in chunk}
        while max(inbox.backlog(r, ns) for ns in namespaces) > cap:
            time.sleep(POLL_S)
        pipe = r.pipeline(transaction=False)
        inbox_writer.append(pipe, chunk)
        pipe.execute()


def start_workers(
    count: int,
    settings: Settings,
    url: str,
    queues: Sequence[str] = (),
    defaults: Mapping[str, str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes on `url`, serving `queues` (default: all); `defaults`:
    environment variables set where the environment does not set them."""
    defaults = defaults or {}
    env = dict(
        os.environ,
        FEEDBACKGUARD_REDIS_URL=url,
        FEEDBACKGUARD_HOME=str(settings.home),
        FEEDBACKGUARD_CLOCK=settings.clock,
        FEEDBACKGUARD_ANALYSIS=settings.analysis,
    )
    if settings.store_url:
        env["FEEDBACKGUARD_STORE_URL"] = settings.store_url
    # The caller prints its own progress: its workers log only problems, unless asked.
    env.setdefault("FEEDBACKGUARD_LOG_LEVEL", "WARNING")
    for name, value in defaults.items():
        env.setdefault(name, value)
    command = [sys.executable, "-m", "feedbackguard", "worker"]
    command += [arg for name in queues for arg in ("--queue", name)]
    return [subprocess.Popen(command, env=env) for _ in range(count)]


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for proc in workers:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(done: Callable[[], tuple[int, int]], phase: str, progress: Progress) -> None:
    while True:
        finished, total = done()
        progress(phase, finished, total)
        if finished >= total:
            return
        time.sleep(POLL_S)


def replay(
    path: Path,
    settings: Settings,
    *,
    workers: int = 1,
    spawn_workers: bool = True,
    decisions_out: IO[bytes] | None = None,
    progress: Progress = lambda phase, done, total: None,
) -> ReplayReport:
    started = time.monotonic()
    events = read_events(path, dates=settings.account_dates())
    with Store.from_settings(settings, create=True):
        pass  # replay may run on a fresh home: it makes the store and its key
    url = redis_url(settings)
    r = client_from_url(url)
    PolicyStore(r).current()  # the policy exists before any worker reads it
    namespaces = sorted({e.namespace for e in events})
    for namespace in namespaces:
        inbox.ensure_group(r, namespace)
    policy = PolicyStore(r).current().policy
    analysed = bool(default_analysers(settings.analysis))
    # The stream is decided on its own time: workers must not move clocks to the wall's.
    event_clock = settings.model_copy(update={"clock": "events"})
    procs = (
        start_workers(workers, event_clock, url, defaults=REPLAY_WORKER_ENV)
        if spawn_workers
        else []
    )
    try:
        total = len(events)
        pushed = 0

        def ingested() -> tuple[int, int]:
            return pushed - sum(inbox.backlog(r, ns) for ns in namespaces), total

        def hold(t: float) -> None:
            """Wait while analysis lags the pushed stream by more than the policy's
            max_lag_s of event time, so windows see the stream as live traffic would."""
            nonlocal pushed

            def lagging(ns: str) -> bool:
                done = ledger.analysed(r, ns)
                if t - done <= policy.analysis.max_lag_s:
                    return False
                due = ledger.clock(r, ns) - done >= policy.analysis.interval_s
                return due or inbox.backlog(r, ns) > 0

            while analysed and any(lagging(ns) for ns in namespaces):
                progress("decide", *ingested())
                time.sleep(POLL_S)
            pushed = min(total, pushed + PUSH_CHUNK)

        push(r, events, settings.inbox_maxlen, hold)
        wait_until(ingested, "decide", progress)
        # Past the last probation, and far enough for one last analysis run to be due.
        last = max((e.received_at.timestamp() for e in events), default=0.0)
        probation = policy.probation_s
        end = last + max(probation, policy.analysis.interval_s)
        pipe = r.pipeline(transaction=False)  # namespaces: one slot each on a cluster
        for namespace in namespaces:
            ledger.advance_clock(pipe, namespace, end)
        pipe.execute()

        def released() -> tuple[int, int]:
            waiting = sum(
                r.zcount(keys.pending(ns), "-inf", last + probation) + r.zcard(keys.releasing(ns))
                for ns in namespaces
            )
            return total - waiting, total

        wait_until(released, "release", progress)
    finally:
        stop_workers(procs)
    report = ReplayReport(events=len(events))
    for chunk in _chunks(events, READ_CHUNK):
        for line in _decision_lines(r, chunk):
            status = str(line["status"])
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if decisions_out is not None:
                decisions_out.write(orjson.dumps(line) + b"\n")
    report.seconds = time.monotonic() - started
    r.close()
    return report


def _chunks(events: Sequence[FeedbackEvent], size: int) -> Iterator[Sequence[FeedbackEvent]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _decision_lines(
    r: redis.Redis[bytes], events: Sequence[FeedbackEvent]
) -> Iterator[dict[str, Any]]:
    by_namespace: dict[str, list[str]] = {}
    for event in events:
        by_namespace.setdefault(event.namespace, []).append(event.event_id)
    found: dict[tuple[str, str], ledger.RawRecord | None] = {}
    for namespace, ids in by_namespace.items():
        for event_id, record in zip(ids, ledger.load_raw(r, namespace, ids), strict=True):
            found[namespace, event_id] = record
    for event in events:
        record = found[event.namespace, event.event_id]
        if record is None:
            yield {"event_id": event.event_id, "status": "dead", "risk": None, "reasons": []}
            continue
        decision = record.trail[-1]  # the JSON form of the current decision
        yield {
            "event_id": event.event_id,
            "status": decision["status"],
            "risk": decision["risk"],
            "reasons": decision["reasons"],
        }
