"""Independence weights: a cohort of N counts about as one, everyone else as 1."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import redis

from feedbackguard import keys
from feedbackguard.checks.graph import GraphAnalyser, GraphCheck
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph import independence
from feedbackguard.pipeline.engine import Pipeline
from tests.test_graph_pipeline import NS, honest, run, swarm

MakeEvent = Callable[..., FeedbackEvent]


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(checks=[RateLimitCheck(), GraphCheck()], analysers=[GraphAnalyser()])


def test_unknown_accounts_weigh_one(r: redis.Redis[bytes]) -> None:
    assert independence.weights(r, NS, ["nobody", "anyone"]) == [1.0, 1.0]
    assert independence.weights(r, NS, []) == []


def test_a_member_of_the_largest_cohort_weighs_one_over_its_size() -> None:
    cohorts = [np.array([0, 1, 2, 3]), np.array([3, 4]), np.array([5]), np.array([6, 6])]
    weight = independence.cohort_weights(8, cohorts)
    assert weight.tolist() == [0.25, 0.25, 0.25, 0.25, 0.5, 1.0, 1.0, 1.0]


def test_published_weights_replace_the_last_run_and_store_only_those_below_one(
    r: redis.Redis[bytes],
) -> None:
    independence.publish(r, NS, ["a", "b", "c"], np.array([1 / 3, 1 / 3, 1.0]))
    assert independence.weights(r, NS, ["a", "c", "x"]) == [0.3333, 1.0, 1.0]
    assert r.hlen(keys.independence(NS)) == 2
    independence.publish(r, NS, ["a", "b"], np.array([1.0, 0.5]))
    assert independence.weights(r, NS, ["a", "b"]) == [1.0, 0.5]
    independence.publish(r, NS, (), np.ones(0))
    assert not r.exists(keys.independence(NS))


def test_analysis_gives_a_swarm_of_n_about_one_over_n_and_honest_accounts_one(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    good = honest(make_event)
    n = 25
    run(pipeline, r, good + swarm(make_event, range(n)))
    members = independence.weights(r, NS, [f"sybil-{m}" for m in range(n)])
    assert max(members) <= 1.5 / n
    assert sum(members) == pytest.approx(1.0, abs=0.5)
    honest_accounts = sorted({e.account_id for e in good})
    assert independence.weights(r, NS, honest_accounts) == [1.0] * len(honest_accounts)
