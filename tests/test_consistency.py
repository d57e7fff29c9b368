"""Consistency checks against real Redis: consensus, model disagreement, known triggers."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import pydantic
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import accounts
from feedbackguard.checks.base import CheckContext, Reason
from feedbackguard.checks.disagreement import CONSENSUS, MODEL, ConsensusCheck, ModelCheck
from feedbackguard.checks.known_triggers import TRIGGER, TriggerCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy, Triggers
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
OLD = T0 - timedelta(days=400)
YOUNG = T0 - timedelta(hours=2)


def ctx(r: redis.Redis[bytes], policy: Policy | None = None) -> CheckContext:
    return CheckContext(redis=r, policy=policy or Policy.default(), namespace=NS)


def votes(make_event: MakeEvent, n: int, value: str, created: object = OLD) -> list[FeedbackEvent]:
    return [
        make_event(item_id="ticket-1", value=value, account_created_at=created) for _ in range(n)
    ]


def test_a_lone_dissenter_against_a_confident_consensus_is_flagged(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    check = ConsensusCheck()
    check(votes(make_event, 10, "billing"), ctx(r))
    found = check(votes(make_event, 1, "shipping"), ctx(r))
    assert [x.code for x in found[0]] == [CONSENSUS]
    assert 0 < found[0][0].score <= Policy.default().consistency.consensus.max_score


def test_agreeing_feedback_and_thin_consensus_are_not_flagged(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    check = ConsensusCheck()
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}
    assert check(votes(make_event, 1, "shipping"), ctx(r)) == {}  # one vote is no consensus
    check(votes(make_event, 10, "billing"), ctx(r))
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}


def test_a_young_swarm_does_not_become_the_consensus(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    check = ConsensusCheck()
    check(votes(make_event, 3, "billing"), ctx(r))
    check(votes(make_event, 10, "shipping", created=YOUNG), ctx(r))
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}


def test_accounts_found_risky_by_the_graph_have_no_voice(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    swarm = votes(make_event, 10, "shipping")
    accounts.replace_findings(
        r, NS, [(e.account_id, {"risk": 1.0, "reasons": [], "clusters": []}) for e in swarm], []
    )
    check = ConsensusCheck()
    check(swarm, ctx(r))
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}


def test_rate_limited_feedback_casts_no_vote(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    flood = votes(make_event, 10, "shipping")
    limited = {i: [Reason("rate_limited.account", "over", 1.0)] for i in range(len(flood))}
    check = ConsensusCheck()
    check(flood, CheckContext(redis=r, policy=Policy.default(), namespace=NS, earlier=limited))
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}


def test_correction_against_a_confident_model_is_flagged_alike_for_young_and_old_accounts(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    # Youth is who sent it (suspicion), not what the label would change (harm).
    said = {"label": "billing", "confidence": 0.97}
    old = make_event(kind="correction", value="shipping", model_output=said, account_created_at=OLD)
    young = make_event(
        kind="correction", value="shipping", model_output=said, account_created_at=YOUNG
    )
    agree = make_event(kind="correction", value="billing", model_output=said)
    found = ModelCheck()([old, young, agree], ctx(r))
    assert set(found) == {0, 1}
    assert found[0][0].code == MODEL
    assert found[1][0].score == found[0][0].score
    assert found[0][0].score < Policy.default().decide.wrong_harm


def test_a_young_bonus_set_in_policy_flags_young_accounts_more(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    policy = Policy.default()
    model = policy.consistency.model.model_copy(update={"young_bonus": 0.3})
    policy = policy.model_copy(
        update={"consistency": policy.consistency.model_copy(update={"model": model})}
    )
    said = {"label": "billing", "confidence": 0.97}
    old = make_event(kind="correction", value="shipping", model_output=said, account_created_at=OLD)
    young = make_event(
        kind="correction", value="shipping", model_output=said, account_created_at=YOUNG
    )
    found = ModelCheck()([old, young], ctx(r, policy))
    assert found[1][0].score > found[0][0].score


def test_an_unsure_model_output_is_not_evidence(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    event = make_event(value="shipping", model_output={"label": "billing", "confidence": 0.6})
    assert ModelCheck()([event], ctx(r)) == {}


def _policy_with(**triggers: object) -> Policy:
    policy = Policy.default()
    section = Triggers.model_validate(triggers)
    return policy.model_copy(
        update={"consistency": policy.consistency.model_copy(update={"triggers": section})}
    )


def test_known_text_trigger_is_rejected(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    policy = _policy_with(text=[r"(?i)cf\s*-\s*2026"])
    hit = make_event(payload={"text": "refund me, CF - 2026 please"})
    miss = make_event(payload={"text": "refund me"})
    found = TriggerCheck()([hit, miss], ctx(r, policy))
    assert list(found) == [0]
    assert found[0][0].code == TRIGGER
    assert found[0][0].score >= policy.thresholds.reject


def test_known_feature_pattern_is_rejected(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    policy = _policy_with(features=[{"name": "corner", "indices": [0, 1, 8], "low": 15.0}])
    pixels = [0.0] * 64
    stamped = [16.0, 16.0, *pixels[2:8], 16.0, *pixels[9:]]
    found = TriggerCheck()(
        [make_event(payload={"features": stamped}), make_event(payload={"features": pixels})],
        ctx(r, policy),
    )
    assert list(found) == [0]


def test_an_invalid_trigger_regex_is_refused_with_its_pattern() -> None:
    with pytest.raises(pydantic.ValidationError, match="not a valid regex"):
        Triggers.model_validate({"text": ["(unclosed"]})


@given(
    indices=st.lists(st.integers(min_value=-5, max_value=5000), min_size=1, max_size=8),
    low=st.one_of(st.none(), st.floats()),
    high=st.one_of(st.none(), st.floats()),
)
def test_feature_rules_accept_only_sane_ranges(
    indices: list[int], low: float | None, high: float | None
) -> None:
    rule = {"name": "r", "indices": indices, "low": low, "high": high}
    try:
        parsed = Triggers.model_validate({"features": [rule]}).features[0]
    except pydantic.ValidationError:
        bounds = [b for b in (low, high) if b is not None]
        assert (
            min(indices) < 0
            or not bounds
            or any(math.isnan(b) or math.isinf(b) for b in bounds)
            or (low is not None and high is not None and low > high)
        )
        return
    assert min(parsed.indices) >= 0
    assert parsed.low is None or parsed.high is None or parsed.low <= parsed.high
    # A valid rule survives the policy's JSON round trip (how versions are stored).
    assert Triggers.model_validate_json(
        Triggers(features=(parsed,)).model_dump_json()
    ).features == (parsed,)


def test_reputation_is_the_prior_mean_until_outcomes_are_known(r: redis.Redis[bytes]) -> None:
    prior = Policy.default().consistency.reputation
    for agreed in (True, True, True, False):
        accounts.record_moderation(r, NS, "steady", approved=agreed)
    for _ in range(4):
        accounts.record_moderation(r, NS, "contrarian", approved=False)
    found = accounts.reliability(r, NS, ["new", "steady", "contrarian"], prior)
    mean = prior.agree / (prior.agree + prior.disagree)
    assert found[0] == pytest.approx(mean)
    assert found[1] > mean > found[2]


def test_accounts_moderators_rejected_carry_less_weight_in_the_consensus(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    rejected = votes(make_event, 6, "shipping")
    for event in rejected:
        for _ in range(10):
            accounts.record_moderation(r, NS, event.account_id, approved=False)
    check = ConsensusCheck()
    check(rejected, ctx(r))
    assert check(votes(make_event, 1, "billing"), ctx(r)) == {}
    check(votes(make_event, 6, "billing"), ctx(r))
    found = check(votes(make_event, 1, "shipping"), ctx(r))
    assert [x.code for x in found[0]] == [CONSENSUS]
