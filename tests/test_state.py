"""The record state machine: every status change goes through `state.apply`, and the
status sets, review indexes, counters, moderator outcomes and the store always agree
with the records, whatever sequence of ingest, analysis, release, moderation and undo
moves them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedbackguard import inbox_writer, keys
from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger, state
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.policy.store import PolicyStore
from feedbackguard.review import cases
from feedbackguard.review.moderation import moderate, undo
from feedbackguard.store import Store

NS = "default"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ACCOUNTS = ("ann", "bob", "cy")
# Reason scores that put an event below review, in review, and at rejection under the
# default thresholds (review 0.5, reject 0.9).
SCORES = {"clean": 0.0, "unsure": 0.6, "bad": 0.95}


class Scores:
    """A check that gives each event the score its id was registered with."""

    name = "scores"

    def __init__(self) -> None:
        self.by_id: dict[str, float] = {}

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        return {
            i: [Reason("test.score", "given", self.by_id[e.event_id])]
            for i, e in enumerate(events)
            if self.by_id.get(e.event_id)
        }


def _status_change(record: ledger.RawRecord, status: str, by: str = "auto") -> state.Change:
    decision = {**record.trail[-1], "status": status, "decided_by": by}
    return state.change(record.then(decision), account_id="ann", received_at=1.0, due=2.0)


def _new_record(status: str) -> ledger.RawRecord:
    event = FeedbackEvent(kind="label", account_id="ann", item_id="i", value="x", received_at=T0)
    decision = {
        "event_id": event.event_id,
        "status": status,
        "risk": 0.0,
        "reasons": [],
        "policy_version": 1,
        "decided_at": T0.isoformat(),
        "decided_by": "auto",
    }
    return ledger.RawRecord(event.to_json(), [decision])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, "admitted"),
        (None, "quarantined"),
        ("rejected", "admitted"),
        ("rejected", "pending"),
        ("quarantined", "admitted"),
        ("quarantined", "review"),
        ("review", "pending"),
        ("admitted", "pending"),
    ],
)
def test_a_transition_the_state_machine_does_not_allow_is_refused(
    r: redis.Redis[bytes], store: Store, old: str | None, new: str
) -> None:
    if old is None:
        record = _new_record(new)
        change = state.change(record, account_id="ann", received_at=1.0)
    else:
        change = _status_change(_new_record(old), new)
    pipe = r.pipeline(transaction=True)
    with pytest.raises(state.IllegalTransition):
        state.apply(pipe, NS, [change], ttl_s=60, store=store)
    assert pipe.command_stack == []
    assert store.count() == 0


def test_admitting_without_the_store_is_refused(r: redis.Redis[bytes]) -> None:
    change = _status_change(_new_record("pending"), "admitted")
    with pytest.raises(state.IllegalTransition):
        state.apply(r.pipeline(transaction=True), NS, [change], ttl_s=60)


def _ids(r: redis.Redis[bytes], key: str) -> set[str]:
    return {raw.decode() for raw in r.zrange(key, 0, -1)}


def assert_consistent(
    r: redis.Redis[bytes], store: Store, events: dict[str, FeedbackEvent]
) -> None:
    """Everything that mirrors a status agrees with the records."""
    records = dict(zip(events, ledger.load(r, NS, list(events)), strict=True))
    by_status: dict[str, set[str]] = {}
    for event_id, record in records.items():
        assert record is not None, f"{event_id} lost"
        by_status.setdefault(record.decision.status, set()).add(event_id)
    pending, review = by_status.get("pending", set()), by_status.get("review", set())
    assert _ids(r, keys.pending(NS)) | _ids(r, keys.releasing(NS)) == pending
    assert _ids(r, keys.review(NS)) == review
    assert _ids(r, keys.review_indexed(NS)) == review
    assert {raw.decode() for raw in r.hkeys(keys.review_meta(NS))} == review
    assert _ids(r, keys.review_risk(NS)) == review
    assert cases.check(r, NS) == []
    for account in ACCOUNTS:
        mine = {i for i in review if events[i].account_id == account}
        assert _ids(r, keys.review_account(NS, account)) == mine
    stats = ledger.stats(r, NS)
    for status in ("pending", "review", "admitted", "rejected", "quarantined"):
        assert stats.get(status, 0) == len(by_status.get(status, set())), status
    live = {item.event.event_id for item in store.iter_rows()}
    assert live == by_status.get("admitted", set())
    outcomes: Counter[tuple[str, str]] = Counter()  # (account, admitted|rejected)
    for event_id, rec in records.items():
        assert rec is not None
        before: Decision | None = None
        for decision in rec.trail:
            by_moderator = decision.decided_by.startswith(state.MODERATOR_PREFIX)
            if by_moderator and decision.status in ("admitted", "rejected"):
                outcomes[(events[event_id].account_id, decision.status)] += 1
            elif by_moderator and decision.status == "review" and before is not None:
                outcomes[(events[event_id].account_id, before.status)] -= 1  # an undo
            before = decision
    for approved in (True, False):
        outcome = "admitted" if approved else "rejected"
        expected = {a: n for (a, s), n in outcomes.items() if s == outcome and n}
        found = {
            a.decode(): int(s)
            for a, s in r.zrange(keys.moderated(NS, approved), 0, -1, withscores=True)
        }
        assert {a: n for a, n in found.items() if n} == expected


Step = tuple[str, list[int], str]
_steps = st.tuples(
    st.sampled_from(["ingest", "analyse", "release", "approve", "reject", "undo"]),
    st.lists(st.integers(0, 30), min_size=1, max_size=6),
    st.sampled_from(sorted(SCORES)),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_steps, min_size=1, max_size=10))
@example(  # approve, undo, approve again: the stored row quarantined, then restored
    steps=[
        ("ingest", [0, 1], "unsure"),
        ("approve", [0], "clean"),
        ("reject", [1], "clean"),
        ("undo", [0, 1], "clean"),
        ("approve", [0], "clean"),
    ]
)
@example(  # released, then found by analysis: quarantined
    steps=[("ingest", [0, 1], "clean"), ("release", [0], "clean"), ("analyse", [0], "bad")]
)
def test_sets_indexes_counters_and_store_always_agree_with_the_records(
    r: redis.Redis[bytes], tmp_path: Path, steps: list[Step]
) -> None:
    r.flushdb()
    store = Store(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}", b"k" * 32)
    scores = Scores()
    pipeline = Pipeline(r=r, store=store, policies=PolicyStore(r, cache_s=0), checks=[scores])
    events: dict[str, FeedbackEvent] = {}
    order: list[str] = []
    try:
        for op, picks, level in steps:
            chosen = list(dict.fromkeys(order[p % len(order)] for p in picks)) if order else []
            _step(pipeline, scores, events, order, op, picks, chosen, level)
            assert_consistent(r, store, events)
    finally:
        store.close()


def _step(
    pipeline: Pipeline,
    scores: Scores,
    events: dict[str, FeedbackEvent],
    order: list[str],
    op: str,
    picks: list[int],
    chosen: list[str],
    level: str,
) -> None:
    r = pipeline.r
    if op == "ingest":
        new = [
            FeedbackEvent(
                kind="label",
                account_id=ACCOUNTS[p % len(ACCOUNTS)],
                item_id=f"item-{p % 4}",
                value="spam",
                received_at=T0 + timedelta(seconds=len(order) + n),
            )
            for n, p in enumerate(picks)
        ]
        for event in new:
            scores.by_id[event.event_id] = SCORES[level]
            events[event.event_id] = event
            order.append(event.event_id)
        pipe = r.pipeline(transaction=False)
        inbox_writer.append(pipe, new)
        pipe.execute()
        while pipeline.ingest_batch(NS, "test").entries:
            pass
    elif op == "analyse":
        found = [Reason(f"test.found.{level}", "analysis", SCORES[level])]
        pipeline.redecide(NS, dict.fromkeys(chosen, found), actor="analysis")
    elif op == "release":
        pipeline.release(NS, now=T0.timestamp() + 10 * 86400)
    elif op in ("approve", "reject"):
        moderate(pipeline, NS, chosen, approve=op == "approve", actor="ana")
    else:
        undo(pipeline, NS, chosen, actor="ana", window_s=3600)
