"""The review queue: filters, cursor paging, leases, and undo of moderators' decisions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import redis

from feedbackguard import accounts, audit, inbox_writer, keys
from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.review import queue
from feedbackguard.review.moderation import moderate, undo
from feedbackguard.review.queue import Filters
from feedbackguard.store import Store
from tests.review_helpers import NS, send_to_review


class Flagging:
    """A check that gives the listed events one reason each."""

    name = "flagging"

    def __init__(self, reasons: dict[str, Reason]) -> None:
        self.reasons = reasons

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        return {
            i: [self.reasons[e.event_id]]
            for i, e in enumerate(events)
            if e.event_id in self.reasons
        }


MakeEvent = Callable[..., FeedbackEvent]


def listed(r: redis.Redis[bytes], filters: Filters, limit: int = 50) -> list[str]:
    queue.ensure_indexed(r, NS, sync_s=5)
    return queue.page(r, NS, filters, limit=limit).ids


def status(r: redis.Redis[bytes], event_id: str) -> str:
    record = ledger.load(r, NS, [event_id])[0]
    assert record is not None
    return record.decision.status


def test_items_the_pipeline_sends_to_review_are_listed_oldest_first_at_once(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=10 - i) for i in range(5)]
    send_to_review(pipeline, r, events)
    assert queue.page(r, NS, Filters(), limit=50).ids == [e.event_id for e in reversed(events)]


def test_items_sent_to_review_at_ingest_are_indexed_by_reason(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event()
    pipeline.checks = [Flagging({event.event_id: Reason("lockdown", "namespace locked down", 0.5)})]
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, [event])
    pipe.execute()
    pipeline.ingest_batch(NS, "test")
    assert status(r, event.event_id) == "review"
    assert queue.page(r, NS, Filters(reason="lockdown"), limit=50).ids == [event.event_id]


def test_items_analysis_takes_out_of_review_leave_the_indexes(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    send_to_review(pipeline, r, [], per_event={event.event_id: [Reason("sybil.dense", "x", 0.95)]})
    assert status(r, event.event_id) == "rejected"
    assert queue.page(r, NS, Filters(), limit=50).ids == []
    assert r.zcard(keys.review_indexed(NS)) == 0


def test_listing_indexes_lazily_what_the_hook_missed(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=10 - i) for i in range(5)]
    send_to_review(pipeline, r, events)
    r.delete(keys.review_indexed(NS), keys.review_meta(NS), keys.review_risk(NS))
    assert listed(r, Filters()) == [e.event_id for e in reversed(events)]
    assert r.zcard(keys.review_indexed(NS)) == 5


def test_reason_filter_lists_only_items_with_that_code(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    lock, dense = make_event(), make_event()
    send_to_review(
        pipeline,
        r,
        [lock, dense],
        per_event={dense.event_id: [Reason("sybil.dense", "block", 0.6)]},
    )
    assert listed(r, Filters(reason="sybil.dense")) == [dense.event_id]
    assert queue.reason_codes(r, NS) == ["coordination.lockstep", "sybil.dense"]


def test_account_and_risk_filters_combine(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    low = make_event(account_id="a1")
    high = make_event(account_id="a1")
    other = make_event(account_id="a2")
    send_to_review(
        pipeline,
        r,
        [low, high, other],
        per_event={
            high.event_id: [Reason("x", "", 0.8)],
            other.event_id: [Reason("x", "", 0.8)],
        },
    )
    assert listed(r, Filters(account="a1", risk_min=0.7)) == [high.event_id]
    assert listed(r, Filters(risk_max=0.7)) == [low.event_id]


def test_cluster_filter_lists_the_member_accounts_items(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    inside = [make_event(account_id=f"s{i}") for i in range(3)]
    outside = make_event(account_id="honest")
    send_to_review(pipeline, r, [*inside, outside])
    accounts.replace_findings(
        r, NS, [], [("c1", {"members": ["s0", "s1", "s2"], "items": [], "code": "x"})]
    )
    assert sorted(listed(r, Filters(cluster="c1"))) == sorted(e.event_id for e in inside)
    assert listed(r, Filters(cluster="unknown")) == []


def test_cursor_paging_visits_every_item_once_even_with_equal_times(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=float(i // 4)) for i in range(23)]
    send_to_review(pipeline, r, events)
    queue.ensure_indexed(r, NS, sync_s=5)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        found = queue.page(r, NS, Filters(), cursor=cursor, limit=5)
        seen.extend(found.ids)
        if found.cursor is None:
            break
        cursor = found.cursor
    assert sorted(seen) == sorted(e.event_id for e in events)
    assert len(seen) == len(set(seen))


def test_decided_items_leave_the_listing(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(3)]
    send_to_review(pipeline, r, events)
    queue.ensure_indexed(r, NS, sync_s=5)
    moderate(pipeline, NS, [events[0].event_id], approve=False, actor="ana")
    assert sorted(listed(r, Filters(reason="coordination.lockstep"))) == sorted(
        e.event_id for e in events[1:]
    )


def test_two_moderators_never_claim_the_same_item(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(4)]
    send_to_review(pipeline, r, events)
    queue.ensure_indexed(r, NS, sync_s=5)
    ana = queue.claim(r, NS, "ana", lease_s=60, count=2)
    bo = queue.claim(r, NS, "bo", lease_s=60, count=3)
    assert len(ana) == 2
    assert len(bo) == 2
    assert not set(ana) & set(bo)


def test_an_expired_lease_frees_the_item(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    queue.ensure_indexed(r, NS, sync_s=5)
    assert queue.claim(r, NS, "ana", lease_s=0.05) == [event.event_id]
    assert queue.claim(r, NS, "bo", lease_s=60) == []
    time.sleep(0.1)
    assert queue.claim(r, NS, "bo", lease_s=60) == [event.event_id]


def test_moderating_an_item_leased_to_another_is_refused(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    queue.ensure_indexed(r, NS, sync_s=5)
    queue.claim(r, NS, "ana", lease_s=60)
    result = moderate(pipeline, NS, [event.event_id], approve=True, actor="bo")
    assert result.claimed_by_other == [event.event_id]
    assert status(r, event.event_id) == "review"
    assert store.count() == 0


def test_undo_of_an_approval_quarantines_and_returns_to_review(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    moderate(pipeline, NS, [event.event_id], approve=True, actor="ana")
    result = undo(pipeline, NS, [event.event_id], actor="ana", window_s=60)
    assert result.undone == [event.event_id]
    assert status(r, event.event_id) == "review"
    assert [i.event.event_id for i in store.iter_rows()] == []
    assert listed(r, Filters()) == [event.event_id]
    assert audit.entries(r, 1)[0]["action"] == "review.undo"


def test_approving_again_after_undo_restores_the_item_once(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    moderate(pipeline, NS, [event.event_id], approve=True, actor="ana")
    undo(pipeline, NS, [event.event_id], actor="ana", window_s=60)
    moderate(pipeline, NS, [event.event_id], approve=True, actor="ana")
    assert [i.event.event_id for i in store.iter_rows()] == [event.event_id]
    assert store.count() == 1


def test_undo_of_a_rejection_returns_to_review_and_takes_back_the_seed(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event(account_id="troll")
    send_to_review(pipeline, r, [event])
    moderate(pipeline, NS, [event.event_id], approve=False, actor="ana")
    assert accounts.seeds(r, NS) == ([], ["troll"])
    undo(pipeline, NS, [event.event_id], actor="ana", window_s=60)
    assert status(r, event.event_id) == "review"
    assert accounts.seeds(r, NS) == ([], [])
    assert ledger.stats(r, NS)["rejected"] == 0


def test_undo_is_refused_for_another_moderator_or_after_the_window(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    moderate(pipeline, NS, [event.event_id], approve=False, actor="ana")
    assert undo(pipeline, NS, [event.event_id], actor="bo", window_s=60).refused == [event.event_id]
    assert undo(pipeline, NS, [event.event_id], actor="ana", window_s=0).refused == [event.event_id]
    assert status(r, event.event_id) == "rejected"
