"""The account graph in the real pipeline: window in Redis, analysis, re-decisions."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
import redis

from feedbackguard import accounts, inbox_writer, keys
from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.graph import (
    BucketCache,
    GraphAnalyser,
    GraphCheck,
    load_window,
)
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.store import Store
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
HOUR = 3600.0


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(checks=[RateLimitCheck(), GraphCheck()], analysers=[GraphAnalyser()])


def run(pipeline: Pipeline, r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    """Ingest `events` (in time order) and run one analysis at the clock's end."""
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, sorted(events, key=lambda e: e.received_at))
    pipe.execute()
    while pipeline.ingest_batch(NS, "test").entries:
        pass
    pipeline.analyse(NS)


def honest(make_event: MakeEvent, n_accounts: int = 120, seed: int = 1) -> list[FeedbackEvent]:
    """Old accounts labelling popular and rare items over two days, each their own IP."""
    rng = random.Random(seed)
    out = []
    for a in range(n_accounts):
        created = T0 - timedelta(days=rng.uniform(200, 2000))
        for _ in range(rng.randint(2, 8)):
            out.append(
                make_event(
                    at=rng.uniform(0, 48 * HOUR),
                    account_id=f"honest-{a}",
                    account_created_at=created,
                    item_id=f"item-{rng.randrange(400)}",
                    value=rng.choice(["spam", "ham"]),
                    ip=f"198.{a % 200}.{a % 7}.{a % 250}",
                )
            )
    return out


def swarm(
    make_event: MakeEvent, members: range, start_h: float = 30.0, targets: int = 6
) -> list[FeedbackEvent]:
    """Fresh accounts on three addresses flipping the same items within minutes."""
    rng = random.Random(7)
    out = []
    for m in members:
        created = T0 + timedelta(hours=start_h - 5)
        for t in range(targets):
            out.append(
                make_event(
                    at=start_h * HOUR + m * 30 + t * 5 + rng.uniform(0, 3),
                    account_id=f"sybil-{m}",
                    account_created_at=created,
                    item_id=f"target-{t}",
                    value="ham",
                    ip=f"203.0.113.{m % 3}",
                )
            )
    return out


def statuses(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> list[str]:
    records = ledger.load(r, NS, [e.event_id for e in events])
    return [rec.decision.status if rec else "missing" for rec in records]


def test_a_lockstep_swarm_is_sent_away_and_honest_feedback_stays_pending(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    good = honest(make_event)
    bad = swarm(make_event, range(25))
    run(pipeline, r, good + bad)
    assert set(statuses(r, bad)) <= {"review", "rejected"}
    assert statuses(r, good).count("pending") == len(good)


def test_analysis_findings_reach_later_feedback_at_ingest(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    run(pipeline, r, honest(make_event) + swarm(make_event, range(25)))
    later = make_event(at=40 * HOUR, account_id="sybil-3", item_id="other", value="ham")
    run(pipeline, r, [later])
    record = ledger.load(r, NS, [later.event_id])[0]
    assert record is not None
    assert {x.code for x in record.decision.reasons} >= {"coordination.lockstep"}
    assert record.decision.status in ("review", "rejected")


def test_admitted_items_of_a_swarm_found_later_are_quarantined(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    early = swarm(make_event, range(3))  # too few to be a group yet
    run(pipeline, r, honest(make_event) + early)
    probation = pipeline.policies.current().policy.probation_s
    pipeline.release(NS, now=early[-1].received_at.timestamp() + probation)
    assert set(statuses(r, early)) == {"admitted"}
    run(pipeline, r, swarm(make_event, range(3, 25)))
    assert set(statuses(r, early)) == {"quarantined"}
    live = {item.event.event_id for item in store.iter_rows()}
    assert not live & {e.event_id for e in early}


def test_feedback_of_a_blocked_account_is_rejected(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    accounts.block(r, "troll", actor="alice", note="known spammer")
    events = [make_event(at=i, account_id="troll") for i in range(3)]
    run(pipeline, r, events)
    assert statuses(r, events) == ["rejected"] * 3
    record = ledger.load(r, NS, [events[0].event_id])[0]
    assert record is not None
    assert [x.code for x in record.decision.reasons] == ["account.blocked"]


def test_a_trusted_account_gets_no_graph_reasons(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    accounts.trust(r, "sybil-4", actor="alice")
    bad = swarm(make_event, range(25))
    run(pipeline, r, honest(make_event) + bad)
    vouched = [e for e in bad if e.account_id == "sybil-4"]
    assert set(statuses(r, vouched)) == {"pending"}
    assert accounts.account_risk(r, NS, "sybil-4") is None
    assert accounts.account_risk(r, NS, "sybil-5") is not None


def test_cluster_evidence_names_members_and_items(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    run(pipeline, r, honest(make_event) + swarm(make_event, range(25)))
    found = accounts.account_risk(r, NS, "sybil-0")
    assert found is not None
    assert found["clusters"]
    cluster = accounts.cluster(r, NS, found["clusters"][0])
    assert cluster is not None
    assert "sybil-0" in cluster["members"]
    assert set(cluster["items"]) >= {"target-0", "target-1"}
    assert cluster["timeline"]["counts"]


def test_a_redelivered_batch_adds_no_duplicate_rows_to_the_window(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(5)]
    check = GraphCheck()
    ctx = CheckContext(redis=r, policy=pipeline.policies.current().policy, namespace=NS)
    check(events + events, ctx)  # a batch that carries an event twice
    check(events, ctx)  # and a redelivered batch
    rows = load_window(r, NS, 0.0, ctx.policy.graph)
    assert sorted(rows.event_id) == sorted(e.event_id for e in events)


def test_analysis_drops_window_slices_older_than_the_window(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    window_s = pipeline.policies.current().policy.graph.window_s
    old = [make_event(at=i) for i in range(3)]
    new = [make_event(at=window_s + 5 * HOUR + i) for i in range(3)]
    run(pipeline, r, old + new)
    rows = load_window(r, NS, 0.0, pipeline.policies.current().policy.graph)
    assert set(rows.event_id) == {e.event_id for e in new}
    assert r.zcard(keys.graph_buckets(NS)) == 1


def test_a_cached_window_load_reads_what_was_appended_since(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    ctx = CheckContext(redis=r, policy=pipeline.policies.current().policy, namespace=NS)
    cache = BucketCache()
    GraphCheck()([make_event(at=i * 600) for i in range(10)], ctx)
    load_window(r, NS, 0.0, ctx.policy.graph, cache)
    GraphCheck()([make_event(at=i * 900) for i in range(10)], ctx)  # old and new buckets
    cached = load_window(r, NS, 0.0, ctx.policy.graph, cache)
    assert cached == load_window(r, NS, 0.0, ctx.policy.graph)
    assert len(cached) == 20


def test_a_cached_window_load_rereads_a_bucket_made_again(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    ctx = CheckContext(redis=r, policy=pipeline.policies.current().policy, namespace=NS)
    cache = BucketCache()
    GraphCheck()([make_event(at=i) for i in range(5)], ctx)
    load_window(r, NS, 0.0, ctx.policy.graph, cache)
    r.delete(*r.zrange(keys.graph_buckets(NS), 0, -1))
    fresh = [make_event(at=i) for i in range(8)]
    GraphCheck()(fresh, ctx)
    cached = load_window(r, NS, 0.0, ctx.policy.graph, cache)
    assert cached.event_id == [e.event_id for e in fresh]
