"""The review load `bench detect` reports (`feedbackguard.bench.review_load`): cases
and moderator actions per 10,000 events, the triage place of the first honest case and
whether all waiting poison ranks above it, on small case sets built in a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from feedbackguard.bench.review_load import measure
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.reasons import Reason
from feedbackguard.review import cases, casework
from feedbackguard.simulate import HONEST
from feedbackguard.simulate.world import Truth
from tests.review_helpers import NS, put_in_review

MakeEvent = Callable[..., FeedbackEvent]
SYBILS = Reason("coordination.lockstep", "lockstep", 0.8, "g:sybils")
POISON = Truth("swarm", is_poison=True)
HONEST_EVENT = Truth(HONEST, is_poison=False)


def truth_of(poison: Sequence[FeedbackEvent], honest: Sequence[FeedbackEvent]) -> dict[str, Truth]:
    return {e.event_id: POISON for e in poison} | {e.event_id: HONEST_EVENT for e in honest}


def sybil_events(make_event: MakeEvent, accounts: int = 3) -> list[FeedbackEvent]:
    return [make_event(account_id=f"sybil-{k}") for k in range(accounts)]


def test_first_honest_case_ranks_below_a_more_harmful_poison_case(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event)
    honest = [make_event(account_id="ana")]
    put_in_review(r, poison, [SYBILS], risk=0.8, harm=0.5)
    put_in_review(r, honest, risk=0.6, harm=0.1)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert load.order == "harm"
    assert load.first_honest_case_rank == 2
    assert load.poison_cases_above_honest


def test_poison_in_a_case_ranked_below_an_honest_case_is_reported(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event)
    honest = [make_event(account_id="ana")]
    put_in_review(r, poison, [SYBILS], risk=0.8, harm=0.01)
    put_in_review(r, honest, risk=0.6, harm=0.5)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert load.first_honest_case_rank == 1
    assert not load.poison_cases_above_honest


def test_pure_cases_cost_one_action_each(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    poison = sybil_events(make_event, accounts=5)
    honest = [make_event(account_id="ana"), make_event(account_id="ana")]
    put_in_review(r, poison, [SYBILS], harm=0.5)
    put_in_review(r, honest, harm=0.1)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert (load.open_cases, load.mixed_cases, load.actions) == (2, 0, 2)


def test_a_mixed_group_case_costs_a_split_and_a_tick_per_honest_account(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event, accounts=4)
    honest = [make_event(account_id=name) for name in ("ana", "ana", "bo")]
    put_in_review(r, [*poison, *honest], [SYBILS], harm=0.5)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert (load.open_cases, load.mixed_cases, load.split_ticks, load.actions) == (1, 1, 2, 3)
    assert not load.poison_cases_above_honest


def test_a_mixed_account_case_costs_a_tick_per_honest_event(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    # A compromised account: its owner's labels and the attacker's, in one account case.
    poison = [make_event(account_id="owned")]
    honest = [make_event(account_id="owned") for _ in range(3)]
    put_in_review(r, [*poison, *honest], harm=0.5)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert (load.open_cases, load.split_ticks, load.actions) == (1, 3, 4)


def test_an_attackers_events_that_are_not_poison_do_not_make_a_case_honest(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event)
    camouflage = [make_event(account_id="sybil-0")]
    put_in_review(r, [*poison, *camouflage], [SYBILS], harm=0.5)
    truth = truth_of(poison, []) | {camouflage[0].event_id: Truth("swarm", is_poison=False)}
    load = measure(r, NS, [*poison, *camouflage], truth)
    assert load.first_honest_case_rank is None
    assert (load.mixed_cases, load.actions) == (0, 1)


def test_figures_are_per_10000_events_of_the_run(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event)
    honest = [make_event(account_id="ana")]
    admitted = [make_event() for _ in range(396)]  # never in review: only in the count
    put_in_review(r, poison, [SYBILS], harm=0.5)
    put_in_review(r, honest, harm=0.1)
    figures = measure(r, NS, [*poison, *honest, *admitted], truth_of(poison, honest)).figures()
    assert figures == {
        "review_cases": 50.0,
        "review_actions": 50.0,
        "first_honest_case_rank": 2,
        "poison_cases_above_honest": True,
    }


def test_decided_cases_count_as_opened_but_need_no_more_actions(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    poison = sybil_events(make_event)
    honest = [make_event(account_id="ana")]
    put_in_review(r, poison, [SYBILS], harm=0.5)
    put_in_review(r, honest, harm=0.1)
    first = cases.page(r, NS, cases.Filters()).ids[0]
    casework.decide(pipeline, NS, first, "ana", "reject", keep_s=300)
    load = measure(r, NS, [*poison, *honest], truth_of(poison, honest))
    assert (load.cases_opened, load.open_cases, load.actions) == (2, 1, 1)
    assert load.first_honest_case_rank == 1
    assert load.poison_cases_above_honest  # no poison waits any more
