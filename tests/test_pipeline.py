"""The ingest -> decide -> probation -> release path, against real Redis and SQL."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from click.testing import CliRunner

from feedbackguard import inbox_writer, keys, metrics
from feedbackguard.checks.base import AnalysisContext, CheckContext, Findings, Reason, Verdicts
from feedbackguard.cli import main
from feedbackguard.connection import client_from_url
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline, requeue_held
from feedbackguard.policy import Policy, RateLimit, RateLimits
from feedbackguard.store import Store

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def push(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, events)
    pipe.execute()


def drain(pipeline: Pipeline) -> None:
    while pipeline.ingest_batch(NS, "test").entries:
        pass


def test_every_event_is_decided_exactly_once(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(1200)]
    push(r, events)
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert stats["decided"] == 1200
    assert stats["pending"] == 1200
    assert all(rec is not None for rec in ledger.load(r, NS, [e.event_id for e in events]))
    assert inbox.backlog(r, NS) == 0


def test_redelivered_event_ids_are_not_decided_again(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(20)]
    push(r, events)
    drain(pipeline)
    push(r, events)
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert (stats["decided"], stats["duplicates"]) == (20, 20)


def test_entries_of_a_dead_consumer_are_reclaimed(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    push(r, [make_event() for _ in range(30)])
    inbox.ensure_group(r, NS)
    taken = inbox.read_batch(r, NS, "died", count=30, block_ms=None, claim_idle_ms=60_000)
    assert len(taken) == 30
    pipeline.claim_idle_ms = 1
    time.sleep(0.01)  # let the entries go idle longer than claim_idle_ms
    drain(pipeline)
    assert ledger.stats(r, NS)["decided"] == 30


def test_probation_ends_on_event_time_then_items_reach_the_store(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(10)]
    push(r, events)
    drain(pipeline)
    probation = pipeline.policies.current().policy.probation_s
    t0 = events[0].received_at.timestamp()
    assert pipeline.release(NS, now=t0 + probation - 1) == 0
    assert pipeline.release(NS, now=t0 + probation + 4) == 5
    assert pipeline.release(NS, now=t0 + probation + 100) == 5
    assert store.count() == 10
    statuses = {rec.decision.status for rec in ledger.load(r, NS, [e.event_id for e in events])}
    assert statuses == {"admitted"}


def test_release_redone_after_a_crash_stores_nothing_twice(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(8)]
    push(r, events)
    drain(pipeline)
    due = events[0].received_at.timestamp() + pipeline.policies.current().policy.probation_s
    claimed = ledger.claim_due(r, NS, due, limit=100)  # a release that died after claiming
    assert len(claimed) == 8
    assert pipeline.release(NS, now=due) == 8
    assert store.count() == 8
    r.zadd(keys.releasing(NS), dict.fromkeys(claimed, due))  # and one that died later
    assert pipeline.release(NS, now=due) == 0
    assert store.count() == 8


def test_rate_limited_feedback_is_rejected_and_never_stored(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    limits = RateLimits(limits=(RateLimit(scope="account", limit=5, window_s=3600),))
    pipeline.policies.set(Policy(ratelimit=limits), author="test")
    events = [make_event(at=i, account_id="eager") for i in range(12)]
    push(r, events)
    drain(pipeline)
    records = ledger.load(r, NS, [e.event_id for e in events])
    statuses = [rec.decision.status for rec in records if rec]
    assert statuses.count("pending") == 5
    assert statuses.count("rejected") == 7
    rejected = next(rec for rec in records if rec and rec.decision.status == "rejected")
    assert rejected.decision.reasons[0].code == "rate_limited.account"
    pipeline.release(NS, now=events[-1].received_at.timestamp() + 10**6)
    assert store.count() == 5


def test_unparseable_entry_goes_to_dead_letters_and_the_batch_goes_on(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    push(r, [make_event()])
    r.xadd(keys.inbox(NS), {inbox.FIELD: b'{"kind": "nonsense"}'})
    push(r, [make_event()])
    drain(pipeline)
    assert ledger.stats(r, NS)["decided"] == 2
    assert r.llen(keys.dead_letters(NS)) == 1
    assert inbox.backlog(r, NS) == 0


class ExplodesOnItem:
    name = "explodes"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        if any(e.item_id == "poison" for e in events):
            raise RuntimeError("boom")
        return {}


def test_an_event_that_crashes_a_check_is_isolated_in_dead_letters(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    pipeline.checks = [ExplodesOnItem()]
    push(r, [make_event(), make_event(item_id="poison"), make_event()])
    drain(pipeline)
    assert ledger.stats(r, NS)["decided"] == 2
    assert r.llen(keys.dead_letters(NS)) == 1


def test_policy_version_is_recorded_on_each_decision(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    version = pipeline.policies.set(Policy.default(), author="test").version
    event = make_event()
    push(r, [event])
    drain(pipeline)
    record = ledger.load(r, NS, [event.event_id])[0]
    assert record is not None
    assert record.decision.policy_version == version


def test_decision_records_survive_a_round_trip(tmp_path: Path, make_event: MakeEvent) -> None:
    event = make_event(payload={"text": "<script>x</script>"})
    raw = ledger.encode_record(event.to_json(), [])
    assert ledger.decode_record(raw).event == event


class FlagsAccount:
    """An analyser that finds every pending/admitted event of one account suspect."""

    name = "flags-account"

    def __init__(self, account_id: str, events: Sequence[FeedbackEvent], score: float) -> None:
        self.ids = [e.event_id for e in events if e.account_id == account_id]
        self.score = score
        self.seen_now: list[float] = []

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        self.seen_now.append(ctx.now)
        return {i: [Reason("sybil.cluster", "test swarm", self.score)] for i in self.ids}


def _statuses(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> list[str]:
    records = ledger.load(r, NS, [e.event_id for e in events])
    return [rec.decision.status for rec in records if rec]


def test_analysis_sends_pending_items_of_a_flagged_account_to_review(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=i, account_id="swarm" if i % 2 else f"h{i}") for i in range(10)]
    pipeline.analysers = [FlagsAccount("swarm", events, score=0.6)]
    push(r, events)
    drain(pipeline)
    outcome = pipeline.analyse(NS)
    assert outcome.changed == {("pending", "review"): 5}
    assert _statuses(r, events).count("review") == 5
    assert r.zcard(keys.review(NS)) == 5
    stats = ledger.stats(r, NS)
    assert (stats["pending"], stats["review"]) == (5, 5)


def test_analysis_finding_the_same_reasons_again_changes_nothing(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(account_id="swarm") for _ in range(3)]
    pipeline.analysers = [FlagsAccount("swarm", events, score=0.6)]
    push(r, events)
    drain(pipeline)
    pipeline.analyse(NS)
    again = pipeline.analyse(NS)
    assert again.changed == {}
    record = ledger.load(r, NS, [events[0].event_id])[0]
    assert record is not None
    assert len(record.trail) == 2


def test_nothing_is_released_before_analysis_has_seen_its_probation_end(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event(at=i, account_id="swarm") for i in range(4)]
    analyser = FlagsAccount("nobody", events, score=0.6)
    pipeline.analysers = [analyser]
    push(r, events)
    drain(pipeline)
    end = events[-1].received_at.timestamp() + pipeline.policies.current().policy.probation_s
    pipe = r.pipeline()
    ledger.advance_clock(pipe, NS, end)
    pipe.execute()
    assert pipeline.release(NS) == 0
    pipeline.analyse(NS)
    assert analyser.seen_now == [end]
    assert pipeline.release(NS) == 4
    assert store.count() == 4


def test_admitted_items_of_an_account_found_later_are_quarantined(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event(at=i, account_id="sleeper" if i < 3 else f"h{i}") for i in range(6)]
    push(r, events)
    drain(pipeline)
    pipeline.release(NS, now=events[-1].received_at.timestamp() + 10**6)
    pipeline.analysers = [FlagsAccount("sleeper", events, score=0.95)]
    outcome = pipeline.analyse(NS)
    assert outcome.quarantined == 3
    assert _statuses(r, events).count("quarantined") == 3
    live = {item.event.event_id for item in store.iter_rows()}
    assert live == {e.event_id for e in events[3:]}


def test_items_in_review_are_rejected_but_never_cleared_by_analysis(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(account_id="swarm") for _ in range(2)]
    pipeline.analysers = [FlagsAccount("swarm", events, score=0.6)]
    push(r, events)
    drain(pipeline)
    pipeline.analyse(NS)
    pipeline.analysers = [FlagsAccount("swarm", events, score=0.1)]
    assert pipeline.analyse(NS).changed == {}
    pipeline.analysers = [FlagsAccount("swarm", events, score=0.99)]
    assert pipeline.analyse(NS).changed == {("review", "rejected"): 2}
    assert r.zcard(keys.review(NS)) == 0


def test_records_waiting_for_a_final_status_never_expire(
    pipeline: Pipeline, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    event = make_event()
    push(r, [event])
    drain(pipeline)
    record = ledger.load(r, NS, [event.event_id])[0]
    assert record is not None
    assert record.decision.status == "pending"
    assert r.ttl(keys.record(NS, event.event_id)) == -1


def push_unsure(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    """As a spool replay sends copies whose first write may have landed."""
    r.sadd(keys.namespaces(), NS)
    for event in events:
        r.xadd(keys.inbox(NS), {inbox.FIELD: event.to_json(), inbox.UNSURE: b"1"})


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def test_an_unsure_copy_of_a_decided_event_is_a_duplicate(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    event = make_event(received_at=_ago(60))
    push(r, [event])
    drain(pipeline)
    push_unsure(r, [event])
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert (stats["decided"], stats["duplicates"], stats.get("held", 0)) == (1, 1, 0)


def test_an_unsure_copy_whose_first_record_may_have_expired_is_held_not_decided(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    ttl = Policy().outcome_ttl_s
    late = make_event(received_at=_ago(ttl - Policy().clock_skew_s + 60))
    push_unsure(r, [late])
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert (stats.get("decided", 0), stats["held"]) == (0, 1)
    assert r.lrange(keys.held(NS), 0, -1) == [late.to_json()]
    assert inbox.backlog(r, NS) == 0
    assert b'feedbackguard_queue_depth{namespace="default",queue="held"} 1.0' in metrics.render(r)


def test_an_unsure_copy_within_the_horizon_and_never_seen_is_decided(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    push_unsure(r, [make_event(received_at=_ago(3600))])
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert (stats["decided"], stats.get("held", 0)) == (1, 0)


def test_requeued_held_events_are_decided_once(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent, redis_url: str
) -> None:
    late = [make_event(received_at=_ago(Policy().outcome_ttl_s + 60)) for _ in range(3)]
    push_unsure(r, late)
    drain(pipeline)
    runner = CliRunner()
    env = {"FEEDBACKGUARD_REDIS_URL": redis_url}
    listed = runner.invoke(main, ["held", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "3 event(s) held" in listed.output
    assert late[0].event_id in listed.output
    requeued = runner.invoke(main, ["held", "requeue", "--yes"], env=env)
    assert requeued.exit_code == 0, requeued.output
    assert "requeued 3" in requeued.output
    drain(pipeline)
    stats = ledger.stats(r, NS)
    assert (stats["decided"], stats["held"]) == (3, 0)
    assert r.llen(keys.held(NS)) == 0


def test_commands_say_so_when_redis_cannot_be_reached() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"FEEDBACKGUARD_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    for command in (["held", "list"], ["decisions", "some-event"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 1, result.output
        assert "cannot reach Redis" in result.output
        assert "Traceback" not in result.output


def test_concurrent_requeues_move_each_held_event_once(
    r: redis.Redis[bytes], make_event: MakeEvent, redis_url: str
) -> None:
    held = [make_event().to_json() for _ in range(3000)]
    r.rpush(keys.held(NS), *held)
    r.hset(keys.stats(NS), "held", len(held))
    clients = [client_from_url(redis_url) for _ in range(3)]
    moved: list[int] = []
    threads = [
        threading.Thread(target=lambda c=c: moved.append(requeue_held(c, NS))) for c in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert sum(moved) == len(held)
    entries = [fields[inbox.FIELD] for _, fields in r.xrange(keys.inbox(NS))]
    assert sorted(entries) == sorted(held)
    assert (r.llen(keys.held(NS)), ledger.stats(r, NS)["held"]) == (0, 0)
