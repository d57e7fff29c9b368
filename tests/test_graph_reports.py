"""Report bursts weighed by independence: small and partial brigades are caught by the
burst of correlated reports on their targets; organic crowds and honest reporters
next to enough independent ones are left alone."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np
import pytest
import redis

from benchmarks.report_bursts import (
    DAY,
    HOUR,
    T0,
    Account,
    Brigade,
    Stream,
    brigade,
    decide_all,
    honest,
    viral,
)
from feedbackguard import keys
from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.graph import GraphAnalyser, GraphCheck
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph import independence
from feedbackguard.graph.params import ReportsPolicy
from feedbackguard.graph.reports import CORRELATED, detect_report_bursts
from feedbackguard.graph.window import EventWindow
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from tests.test_graph_pipeline import run

NS = "default"
ACTION = ReportsPolicy().action_reports
EVERY_S = 1800.0
START = DAY


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(checks=[RateLimitCheck(), GraphCheck()], analysers=[GraphAnalyser()])


def background(seed: int = 1) -> tuple[Stream, random.Random, list[Account]]:
    stream = Stream()
    rng = random.Random(seed)
    people = honest(stream, rng, accounts=200, events=800, days=2.0)
    return stream, rng, people


def decide(r: redis.Redis[bytes], pipeline: Pipeline, events: Sequence[FeedbackEvent]) -> None:
    """Every event decided, analysis every 30 minutes of event time (a slow worker)."""
    decide_all(r, pipeline, events, every_s=EVERY_S)


def records(
    r: redis.Redis[bytes], stream: Stream, population: str
) -> list[tuple[FeedbackEvent, str, set[str]]]:
    """(event, status, reason codes) of the population's events."""
    events = [e for e in stream.events if stream.who[e.event_id] == population]
    out = []
    for event, record in zip(events, ledger.load(r, NS, [e.event_id for e in events]), strict=True):
        assert record is not None
        out.append((event, record.decision.status, {x.code for x in record.decision.reasons}))
    return out


def admitted_per_item(r: redis.Redis[bytes], stream: Stream) -> Counter[str]:
    found: Counter[str] = Counter()
    for population in ("honest", "brigade", "viral"):
        for event, status, _ in records(r, stream, population):
            if event.kind == "report" and status == "admitted":
                found[event.item_id] += 1
    return found


def assert_caught(r: redis.Redis[bytes], stream: Stream, targets: Sequence[str]) -> None:
    """No target collects the action's worth of admitted reports, and (nearly) every
    brigade report is sent away with `reports.correlated`."""
    found = records(r, stream, "brigade")
    kept = [status for _, status, _ in found if status == "admitted"]
    assert len(kept) <= 0.05 * len(found)
    assert sum(CORRELATED in codes for _, _, codes in found) >= 0.95 * len(found)
    per_item = admitted_per_item(r, stream)
    assert all(per_item[t] < ACTION for t in targets)


def test_a_brigade_found_by_analysis_has_its_pending_reports_rejected(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    """Ingest leaves the reports pending; the next analysis run, once the burst has
    settled, rejects them with reports.correlated at harm 1 (the fast path of the
    tests below: one analysis, no background traffic)."""
    stream = Stream()
    regular = Account("regular", T0 - timedelta(days=900), "24.1.1.1", "r")
    stream.emit("honest", regular, 0.0, "elsewhere", kind="label")
    targets = brigade(
        stream, random.Random(3), Brigade(members=40, targets=2, start_s=DAY, burst_s=HOUR)
    )
    stream.emit("honest", regular, DAY + 3 * HOUR, "elsewhere", kind="label")
    run(pipeline, r, stream.events)
    found = records(r, stream, "brigade")
    assert {status for _, status, _ in found} == {"rejected"}
    record = ledger.load(r, NS, [found[0][0].event_id])[0]
    assert record is not None
    (reason,) = [x for x in record.decision.reasons if x.code == CORRELATED]
    assert reason.score == 1.0
    assert targets[0] in reason.detail or targets[1] in reason.detail


@pytest.mark.slow
def test_forty_fresh_accounts_on_one_24_reporting_two_posts_are_sent_away(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, _ = background()
    targets = brigade(stream, rng, Brigade(members=40, targets=2, ips="one24", burst_s=HOUR))
    decide(r, pipeline, stream.events)
    assert_caught(r, stream, targets)


@pytest.mark.slow
def test_twenty_fresh_accounts_on_separate_24s_reporting_four_posts_are_sent_away(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, _ = background()
    p = Brigade(members=20, targets=4, ips="residential", burst_s=HOUR)
    targets = brigade(stream, rng, p)
    decide(r, pipeline, stream.events)
    assert_caught(r, stream, targets)


@pytest.mark.slow
def test_a_partial_brigade_of_aged_idle_accounts_is_sent_away(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, _ = background()
    p = Brigade(members=30, targets=4, share=0.5, ips="residential", age="aged_idle")
    targets = brigade(stream, rng, p)
    decide(r, pipeline, stream.events)
    assert_caught(r, stream, targets)


@pytest.mark.slow
def test_a_slow_brigade_over_two_days_takes_no_target_down(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, _ = background()
    p = Brigade(members=20, targets=3, share=0.7, ips="few24", age="aged_idle", burst_s=2 * DAY)
    targets = brigade(stream, rng, p)
    decide(r, pipeline, stream.events)
    per_item = admitted_per_item(r, stream)
    assert all(per_item[t] < ACTION for t in targets)


@pytest.mark.slow
def test_an_organic_viral_report_burst_is_not_flagged(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, people = background()
    bad = viral(stream, rng, people, size=120, items=3)
    decide(r, pipeline, stream.events)
    found = records(r, stream, "viral")
    assert not any(CORRELATED in codes for _, _, codes in found)
    assert all(admitted_per_item(r, stream)[b] >= ACTION for b in bad)


@pytest.mark.slow
def test_honest_crowd_next_to_enough_independent_reporters_is_not_flagged(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    """An office of new accounts on one network reports a truly bad post, and so do
    more regular users than the action needs: the office is one cohort, but its
    reports change nothing the regulars would not do alone."""
    stream, _, _ = background()
    start = 1.5 * DAY
    office = [
        Account(f"office-{n}", T0 + timedelta(seconds=start - 2 * HOUR), f"192.0.2.{n}", f"d{n}")
        for n in range(12)
    ]
    regulars = [
        Account(f"regular-{n}", T0 - timedelta(days=400 + n), f"98.{n}.7.7", f"r{n}")
        for n in range(ACTION + 1)
    ]
    for n, who in enumerate(regulars):
        for period in range(3):
            stream.emit("honest", who, period * 8 * HOUR + n, f"item-{n}", kind="label")
    for n, who in enumerate(office + regulars):
        stream.emit("viral", who, start + 60 * n, "truly-bad")
    decide(r, pipeline, stream.events)
    found = records(r, stream, "viral")
    assert not any(CORRELATED in codes for _, _, codes in found)
    by_regulars = [status for e, status, _ in found if e.account_id.startswith("regular-")]
    assert by_regulars == ["admitted"] * len(regulars)


def test_age_alone_buys_no_independence_history_does() -> None:
    """Ten accounts created months apart on their own networks report one post: without
    any activity before, they count as one; with their own history, as ten."""
    policy = ReportsPolicy()

    def judged(with_history: bool) -> list[int]:
        stream = Stream()
        start = 3 * DAY
        regular = Account("regular", T0 - timedelta(days=900), "24.1.1.1", "r")
        stream.emit("honest", regular, 0.0, "elsewhere", kind="label")  # the window's start
        for n in range(10):
            who = Account(f"a{n}", T0 - timedelta(days=30 + 20 * n), f"98.{n}.{n}.9", f"d{n}")
            if with_history:
                for day in range(3):
                    stream.emit("honest", who, day * DAY + n * 600, f"item-{n}", kind="label")
            stream.emit("brigade", who, start + 60 * n, "post")
        window = EventWindow.from_events(stream.events)
        is_report = np.array([e.kind == "report" for e in stream.events])
        bursts = detect_report_bursts(window, is_report, policy, window.end + DAY)
        return [b.independent for b in bursts]

    assert judged(with_history=False) == [1]
    assert judged(with_history=True) == []


def test_harm_is_the_share_of_the_way_to_the_action_the_correlated_reports_cover() -> None:
    policy = ReportsPolicy(action_reports=5, min_excess=3)
    stream = Stream()
    for n in range(4):  # four newcomers on one item, one cohort
        who = Account(f"n{n}", T0, f"98.{n}.1.1", f"d{n}")
        stream.emit("brigade", who, HOUR + n, "post")
    window = EventWindow.from_events(stream.events)
    is_report = np.ones(window.n_events, dtype=bool)
    (burst,) = detect_report_bursts(window, is_report, policy, window.end + DAY)
    assert (burst.reporters, burst.independent) == (4, 1)
    assert burst.harm == pytest.approx((4 - 1) / (5 - 1))
    assert detect_report_bursts(window, is_report, policy, window.end + 60) == []  # unsettled


@pytest.mark.slow
def test_brigade_members_weigh_about_one_over_its_size(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, rng, _ = background()
    brigade(stream, rng, Brigade(members=40, targets=2, ips="residential", burst_s=HOUR))
    decide(r, pipeline, stream.events)
    members = independence.weights(r, NS, [f"b{m:04d}" for m in range(40)])
    assert max(members) <= 1.5 / 40


def test_only_report_kinds_are_recorded_for_the_report_analysis(
    r: redis.Redis[bytes], pipeline: Pipeline
) -> None:
    stream, _, _ = background()
    events = stream.events[:300]
    ctx = CheckContext(redis=r, policy=pipeline.policies.current().policy, namespace=NS)
    GraphCheck()(events, ctx)
    reports = {e.event_id for e in events if e.kind == "report"}
    recorded = {raw.decode() for raw in r.zrange(keys.report_ids(NS), 0, -1)}
    assert reports
    assert recorded == reports
