"""The review team's capacity: cases it cannot reach before probation ends get the safe
default (rejected, `review.over_budget`), are shown as over budget, and can still be
reopened and decided (an approval then reaches the store)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from click.testing import CliRunner

from feedbackguard import metrics
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy import Policy, Review
from feedbackguard.reasons import Reason
from feedbackguard.review import backlog, budget, cases, casework
from feedbackguard.store import Store
from tests.conftest import T0
from tests.review_helpers import NS, put_in_review, send_to_review

MakeEvent = Callable[..., FeedbackEvent]
HOUR = 3600.0
PROBATION = 6 * HOUR


def capacity(pipeline: Pipeline, per_day: float) -> None:
    policy = Policy.default()
    pipeline.policies.set(
        policy.model_copy(update={"review": Review(cases_per_day=per_day)}), author="test"
    )


def test_cases_the_team_cannot_reach_before_probation_ends_are_over_budget() -> None:
    # 24 cases a day: one an hour. Probation 6 h; now = 10 h.
    ranked = [("fresh-top", 9 * HOUR), ("old-top", 4.5 * HOUR), ("fresh-2", 9 * HOUR)]
    ranked += [(f"deep-{k}", 8 * HOUR) for k in range(6)]
    over = budget.over_budget(ranked, now=10 * HOUR, capacity=24, probation_s=PROBATION)
    # old-top cannot be reached in the 0.5 h it has left and takes no place in the
    # line: fresh-2 is reached at 12 h, deep-0 and deep-1 at 13 and 14 h (their
    # deadline), deep-2.. later.
    assert over == ["old-top", "deep-2", "deep-3", "deep-4", "deep-5"]


def test_over_budget_cases_get_the_safe_default_and_stay_listed(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    capacity(pipeline, 24)
    keep = [make_event(at=9 * HOUR, account_id="recent")]
    late = [make_event(at=0.0, account_id="stale") for _ in range(3)]
    put_in_review(r, [*keep, *late], [Reason("outlier", "odd", 0.6)])
    decided = budget.enforce(pipeline, NS, now=T0.timestamp() + 10 * HOUR)
    assert decided == 3
    records = ledger.load(r, NS, [e.event_id for e in late])
    for record in records:
        assert record is not None
        assert record.decision.status == "rejected"
        assert record.decision.decided_by == casework.BUDGET_ACTOR
        assert casework.OVER_BUDGET in {reason.code for reason in record.decision.reasons}
    assert store.count() == 0
    open_labels = [c.label for c in cases.load(r, NS, cases.page(r, NS, cases.Filters()).ids) if c]
    assert open_labels == ["recent"]
    found = backlog.status(r, NS, 24)
    assert (found.open_cases, found.over_budget_cases) == (1, 1)
    assert cases.check(r, NS) == []


def test_a_moderator_can_still_approve_an_over_budget_case_and_it_reaches_the_store(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    capacity(pipeline, 24)
    late = [make_event(at=0.0, account_id="stale") for _ in range(3)]
    put_in_review(r, late)
    case_id = cases.page(r, NS, cases.Filters()).ids[0]
    budget.enforce(pipeline, NS, now=T0.timestamp() + 10 * HOUR)
    assert store.count() == 0
    over = cases.get(r, NS, case_id)
    assert over is not None
    assert over.over_budget
    assert not over.open
    done = casework.decide(pipeline, NS, case_id, "ana", "approve", keep_s=300, note="fine")
    assert sorted(done.approved) == sorted(e.event_id for e in late)
    assert {item.event.event_id for item in store.iter_rows()} == {e.event_id for e in late}
    reopened = cases.get(r, NS, case_id)
    assert reopened is not None
    assert not reopened.over_budget
    assert cases.check(r, NS) == []


def test_a_case_a_moderator_holds_is_not_given_the_default(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    capacity(pipeline, 24)
    put_in_review(r, [make_event(at=0.0)])
    assert cases.claim(r, NS, "ana", lease_s=60) is not None
    assert budget.enforce(pipeline, NS, now=T0.timestamp() + 10 * HOUR) == 0


def test_without_a_capacity_every_case_waits_for_a_moderator(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(at=0.0)])
    assert budget.enforce(pipeline, NS, now=T0.timestamp() + 100 * HOUR) == 0
    assert cases.open_count(r, NS) == 1


def test_analysis_gives_the_default_on_event_time(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    capacity(pipeline, 24)
    early = make_event(at=0.0, account_id="early")
    send_to_review(pipeline, r, [early], code="outlier")
    later = make_event(at=10 * HOUR, account_id="later")
    send_to_review(pipeline, r, [later], code="outlier")  # moves the clock; analyses
    statuses = {
        rec.event.account_id: rec.decision.status
        for rec in ledger.load(r, NS, [early.event_id, later.event_id])
        if rec is not None
    }
    assert statuses == {"early": "rejected", "later": "review"}


def test_metrics_show_backlog_oldest_case_decided_and_over_budget(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    capacity(pipeline, 24)
    put_in_review(r, [make_event(at=0.0, account_id="stale")])
    put_in_review(r, [make_event(at=9 * HOUR, account_id="a")])
    put_in_review(r, [make_event(at=9 * HOUR, account_id="b")])
    ledger.advance_clock(r, NS, T0.timestamp() + 10 * HOUR)
    budget.enforce(pipeline, NS)
    case_id = cases.page(r, NS, cases.Filters()).ids[0]
    casework.decide(pipeline, NS, case_id, "ana", "reject", keep_s=300)
    text = metrics.render(r).decode()
    assert 'feedbackguard_review_cases{namespace="default"} 1.0' in text
    assert 'feedbackguard_review_oldest_case_age_seconds{namespace="default"} 3600.0' in text
    assert 'feedbackguard_review_cases_decided_last_day{namespace="default"} 1.0' in text
    assert 'feedbackguard_review_cases_over_budget{namespace="default"} 1.0' in text


def test_review_status_command_shows_the_budget(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    capacity(fresh_runtime.pipeline, 24)
    put_in_review(r, [make_event(at=0.0), make_event(at=0.0, account_id="other")])
    ledger.advance_clock(r, NS, T0.timestamp() + 10 * HOUR)
    budget.enforce(fresh_runtime.pipeline, NS)
    result = CliRunner().invoke(main, ["review", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"over_budget_cases": 2' in result.output
    assert '"capacity_per_day": 24.0' in result.output


def test_load_counts_cases_opened_and_actions_needed_to_clear_the_queue(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    group = Reason("coordination.lockstep", "lockstep", 0.6, "g:1")
    put_in_review(r, [make_event(account_id=f"s{i}") for i in range(40)], [group])
    put_in_review(r, [make_event(account_id="a"), make_event(account_id="a")])
    put_in_review(r, [make_event(account_id="b")])
    assert backlog.load(r, NS) == backlog.Load(
        review_cases=3, review_actions=3, waiting_events=43, over_budget_cases=0
    )
    case_id = cases.page(r, NS, cases.Filters(kind="a")).ids[0]
    casework.decide(pipeline, NS, case_id, "ana", "reject", keep_s=300)
    found = backlog.load(r, NS)
    assert (found.review_cases, found.review_actions) == (3, 2)
