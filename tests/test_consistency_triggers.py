"""Discovery of suspected backdoor triggers, their ingest check and the analyser."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pydantic
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import audit
from feedbackguard.checks import known_triggers
from feedbackguard.checks.base import AnalysisContext, CheckContext
from feedbackguard.checks.known_triggers import TriggerCheck
from feedbackguard.consistency import recent, triggers
from feedbackguard.consistency.analyser import ConsistencyAnalyser
from feedbackguard.consistency.ingest import RecentRecorder, SuspectedTriggerCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Discovery, FeatureRule, Policy, Triggers
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
WIDTH = 12
TRIGGER = (10, 11)


def ctx(r: redis.Redis[bytes]) -> CheckContext:
    return CheckContext(redis=r, policy=Policy.default(), namespace=NS)


def honest(make_event: MakeEvent, n: int, seed: int = 0) -> list[FeedbackEvent]:
    """Labels that agree with a confident model, features in [0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = str(i % 3)
        out.append(
            make_event(
                at=float(rng.uniform(0, 5 * 86400)),
                account_id=f"h{i % 80}",
                value=label,
                model_output={"label": label, "confidence": 0.97},
                payload={"features": rng.uniform(0, 1, WIDTH).tolist()},
            )
        )
    return out


def poison(
    make_event: MakeEvent, n: int, accounts: int = 3, span_s: float = 3600, seed: int = 1
) -> list[FeedbackEvent]:
    """The trigger features at 5 (far above honest values), relabelled "0" against a
    confident model that said "1"."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = rng.uniform(0, 1, WIDTH)
        x[list(TRIGGER)] = 5.0
        out.append(
            make_event(
                at=86400 + float(rng.uniform(0, span_s)),
                account_id=f"x{i % accounts}",
                value="0",
                model_output={"label": "1", "confidence": 0.95},
                payload={"features": x.tolist()},
            )
        )
    return out


def window_of(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> recent.Recent:
    RecentRecorder()(events, ctx(r))
    return recent.load(r, NS)


def discover(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> list[triggers.SuspectedTrigger]:
    window = window_of(r, events)
    rows, matrix = window.feature_matrix()
    return triggers.discover(
        window, rows, matrix, Discovery(), (T0 + timedelta(days=5)).timestamp()
    )


def test_a_planted_pattern_from_few_accounts_is_discovered(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    (found,) = discover(r, honest(make_event, 600) + poison(make_event, 40))
    assert sorted(found.above) == list(TRIGGER)
    assert found.below == {}
    assert (found.value, found.events, found.accounts) == ("str:'0'", 40, 3)
    assert "x[10] >" in found.describe()


def test_honest_feedback_alone_yields_no_trigger(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    assert discover(r, honest(make_event, 600)) == []


def test_a_pattern_spread_over_many_accounts_and_a_long_time_is_not_a_trigger(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    spread = poison(make_event, 40, accounts=40, span_s=4 * 86400)
    assert discover(r, honest(make_event, 100) + spread) == []


def test_a_trigger_matches_only_its_pattern_with_its_target_value() -> None:
    trigger = triggers.SuspectedTrigger(
        name="t",
        value="str:'0'",
        label="0",
        width=3,
        above={2: 1.0},
        below={0: 0.5},
        events=20,
        support=1.0,
        base_rate=0.001,
        p_value=1e-9,
        accounts=2,
        account_share=0.01,
        span_s=60.0,
        found_at=0.0,
    )
    x = np.array([[0.1, 0, 2.0], [0.1, 0, 2.0], [0.9, 0, 2.0], [0.1, 0, 0.5]])
    hit = trigger.matches(x, ["str:'0'", "str:'1'", "str:'0'", "str:'0'"])
    assert hit.tolist() == [True, False, False, False]


def test_a_saved_trigger_is_flagged_at_ingest_and_audited_once(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    found = discover(r, honest(make_event, 600) + poison(make_event, 40))
    assert triggers.save(r, NS, found, actor="analysis") == found
    assert triggers.save(r, NS, found, actor="analysis") == []
    assert [e["action"] for e in audit.entries(r, 10)] == ["trigger.suspected"]
    fresh = poison(make_event, 2, seed=7) + honest(make_event, 2, seed=7)
    flagged = SuspectedTriggerCheck()(fresh, ctx(r))
    assert sorted(flagged) == [0, 1]
    assert flagged[0][0].code == triggers.CODE


def test_the_analyser_finds_the_trigger_and_names_every_event_carrying_it(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    good, bad = honest(make_event, 600), poison(make_event, 40)
    RecentRecorder()(good + bad, ctx(r))
    pipe = r.pipeline()
    for e in good + bad:
        pipe.set(f"fg:{{{NS}}}:ev:{e.event_id}", b'{"event":{},"trail":[{"status":"pending"}]}')
    pipe.execute()
    now = (T0 + timedelta(days=5)).timestamp()
    verdicts = ConsistencyAnalyser()(AnalysisContext(r, Policy.default(), NS, now, None))  # type: ignore[arg-type]
    suspected = {
        i for i, reasons in verdicts.items() if any(x.code == triggers.CODE for x in reasons)
    }
    assert suspected == {e.event_id for e in bad}
    assert len(triggers.load(r, NS)) == 1


# --- known text triggers: RE2, bounded scan ---------------------------------------------


def _with_text_triggers(*patterns: str, scan_bytes: int = 8192) -> Policy:
    policy = Policy.default()
    section = Triggers(text=patterns, scan_bytes=scan_bytes)
    return policy.model_copy(
        update={"consistency": policy.consistency.model_copy(update={"triggers": section})}
    )


def test_known_text_triggers_are_compiled_by_re2_and_still_match(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    policy = _with_text_triggers("(a+)+$")
    [compiled] = known_triggers._compiled(policy.consistency.triggers.text)
    assert type(compiled).__module__.split(".")[0] == "re2"
    hit = make_event(payload={"text": "xx aaaa"})
    attack = make_event(payload={"text": "a" * 26 + "!"})
    found = TriggerCheck()([hit, attack], CheckContext(redis=r, policy=policy, namespace=NS))
    assert list(found) == [0]
    assert "'aaaa'" in found[0][0].detail


@pytest.mark.slow
def test_a_pathological_trigger_on_long_attacker_text_takes_well_under_a_second(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    policy = _with_text_triggers("(a+)+$", scan_bytes=65536)
    attack = make_event(payload={"text": "a" * 60_000 + "!"})
    started = time.perf_counter()
    found = TriggerCheck()([attack] * 10, CheckContext(redis=r, policy=policy, namespace=NS))
    assert found == {}
    assert time.perf_counter() - started < 1.0


def test_a_trigger_re2_cannot_compile_is_refused_naming_the_pattern() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"\(a\)\\\\1"):
        Triggers.model_validate({"text": [r"(a)\1"]})


def test_text_triggers_scan_only_the_first_scan_bytes_of_the_text(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    policy = _with_text_triggers("TRIGGER", scan_bytes=1024)
    early = make_event(payload={"text": "é" * 400 + "TRIGGER"})  # 807 bytes in
    late = make_event(payload={"text": "x" * 1020 + "TRIGGER"})  # crosses the limit
    found = TriggerCheck()([early, late], CheckContext(redis=r, policy=policy, namespace=NS))
    assert list(found) == [0]


@given(st.text(max_size=300), st.integers(min_value=1, max_value=600))
def test_the_scanned_text_is_a_prefix_within_the_byte_limit(text: str, limit: int) -> None:
    cut = known_triggers.scanned(text, limit)
    assert text.startswith(cut)
    assert len(cut.encode("utf-8")) <= limit
    assert cut == text or len(text[: len(cut) + 1].encode("utf-8")) > limit


def test_text_and_feature_trigger_lists_are_capped() -> None:
    with pytest.raises(pydantic.ValidationError, match="at most 200"):
        Triggers(text=tuple(f"t{i}" for i in range(201)))
    rule = FeatureRule(name="r", indices=(0,), low=1.0)
    with pytest.raises(pydantic.ValidationError, match="at most 200"):
        Triggers(features=(rule,) * 201)
