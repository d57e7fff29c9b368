"""Ingest decides once per distinct set of reasons in a batch (`engine.first_decisions`):
what it writes must be what a decision per event writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feedbackguard.checks.base import Findings, Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger, state
from feedbackguard.pipeline.decide import decide
from feedbackguard.pipeline.engine import first_decisions
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyVersion

T0 = datetime(2026, 1, 5, tzinfo=UTC)
NOW = datetime(2026, 1, 6, tzinfo=UTC)
CURRENT = PolicyVersion(version=3, policy=Policy(), author="test", created_at=T0)

_reasons = st.lists(
    st.builds(
        Reason,
        code=st.sampled_from(
            ["consistency.consensus", "consistency.support", "rate_limited.account", "outlier"]
        ),
        detail=st.sampled_from(["a", "b"]),
        score=st.sampled_from([0.0, -0.0, 0.3, 0.55, 1.0]),
    ),
    max_size=3,
)


def one_by_one(
    events: list[FeedbackEvent], raws: list[bytes], findings: Findings, skip: set[int]
) -> list[state.Change]:
    probation = CURRENT.policy.probation_s
    changes = []
    for index, (event, raw) in enumerate(zip(events, raws, strict=True)):
        if index in skip:
            continue
        reasons = findings.get(index, [])
        decision = decide(event, reasons, CURRENT.policy, CURRENT.version, NOW).model_dump(
            mode="json"
        )
        received = event.received_at.timestamp()
        changes.append(
            state.change(
                ledger.RawRecord(raw, [decision]),
                account_id=event.account_id,
                received_at=received,
                due=received + probation,
            )
        )
    return changes


@settings(max_examples=150, deadline=None)
@given(
    reasons=st.lists(_reasons, min_size=1, max_size=30),
    skip=st.sets(st.integers(min_value=0, max_value=29), max_size=3),
)
def test_decisions_shared_by_equal_reasons_equal_a_decision_per_event(
    reasons: list[list[Reason]], skip: set[int]
) -> None:
    # Kinds and model outputs vary: a decision's harm depends on them, not only on
    # the reasons.
    said = [None, {"label": "spam", "confidence": 0.9}, {"label": "ham", "confidence": 0.95}]
    events = [
        FeedbackEvent(
            kind="report" if i % 5 == 4 else "label",
            account_id=f"acct-{i % 4}",
            item_id=f"item-{i}",
            value="spam",
            model_output=said[i % 3],
            received_at=T0 + timedelta(seconds=i),
        )
        for i in range(len(reasons))
    ]
    raws = [e.to_json() for e in events]
    findings: Findings = {i: list(r) for i, r in enumerate(reasons) if r}
    skipped = {i: "crashed" for i in skip if i < len(events)}
    got = first_decisions(events, raws, findings, skipped, CURRENT, NOW)
    assert got == one_by_one(events, raws, findings, set(skipped))
