"""A deterministic replay in process: the same stream always meets the same batches,
analysis runs and releases at the same event times.

`feedbackguard replay` hands its stream to worker processes, and when analysis runs
depends on how far ingest got by then (scheduling), so two replays of one stream may
differ. Comparing two ways of analysing (incremental against a full recompute) event
by event needs them to see the same history: here the stream is ingested in chunks
of `chunk` events, and after each chunk analysis runs when due (the clock a policy
interval past the last run, as the workers' pump decides) and every due release is
done; at the end the clock moves past the last probation for a last analysis and
release, as `replay` does.
"""

from __future__ import annotations

from collections.abc import Sequence

from feedbackguard import keys, scripts
from feedbackguard.events import FeedbackEvent
from feedbackguard.inbox_writer import SCRIPT, UNCAPPED, script_args
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline

CONSUMER = "stepped"
# Events per chunk: what `replay` pushes per round trip (`replay.PUSH_CHUNK`).
CHUNK = 1000
# Records read per MGET when collecting statuses.
READ_CHUNK = 2000


def run(
    pipeline: Pipeline, namespace: str, events: Sequence[FeedbackEvent], chunk: int = CHUNK
) -> None:
    """Decide `events` (one namespace, event-time order) chunk by chunk, then move the
    clock past the last probation and finish analysis and releases."""
    r = pipeline.r
    inbox.ensure_group(r, namespace)
    for start in range(0, len(events), chunk):
        raws = [e.to_json() for e in events[start : start + chunk]]
        scripts.run(r, SCRIPT, [keys.inbox(namespace)], script_args(UNCAPPED, False, raws))
        while pipeline.ingest_batch(namespace, CONSUMER).entries:
            pass
        tick(pipeline, namespace)
    policy = pipeline.policies.current().policy
    last = max((e.received_at.timestamp() for e in events), default=0.0)
    pipe = r.pipeline(transaction=False)
    end = last + max(policy.probation_s, policy.analysis.interval_s)
    ledger.advance_clock(pipe, namespace, end)
    pipe.execute()
    tick(pipeline, namespace)


def tick(pipeline: Pipeline, namespace: str) -> None:
    """Analysis when due, then every release due (up to the release horizon)."""
    r = pipeline.r
    interval = pipeline.policies.current().policy.analysis.interval_s
    lag = ledger.clock(r, namespace) - ledger.analysed(r, namespace)
    if pipeline.analysers and lag >= interval:
        pipeline.analyse(namespace)
    while pipeline.release(namespace):
        pass


def statuses(pipeline: Pipeline, namespace: str, event_ids: Sequence[str]) -> list[str]:
    """Each event's final status ("dead" where no record was written)."""
    out: list[str] = []
    for start in range(0, len(event_ids), READ_CHUNK):
        records = ledger.load_raw(pipeline.r, namespace, event_ids[start : start + READ_CHUNK])
        out.extend("dead" if record is None else record.status for record in records)
    return out
