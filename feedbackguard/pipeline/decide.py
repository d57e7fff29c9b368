"""The decision engine: every check's reasons -> one risk and one status, by policy.

Risk is the noisy-OR of the reasons' scores: independent pieces of evidence add up,
and no number of weak reasons alone reaches certainty.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from feedbackguard.decisions import Decision, Status
from feedbackguard.policy import Thresholds
from feedbackguard.reasons import Reason


def combine(reasons: Iterable[Reason]) -> float:
    """Noisy-OR of the reasons' scores, in 0..1."""
    clean = 1.0
    for reason in reasons:
        clean *= 1.0 - min(max(reason.score, 0.0), 1.0)
    return 1.0 - clean


def status_for(risk: float, thresholds: Thresholds) -> Status:
    if risk >= thresholds.reject:
        return "rejected"
    if risk >= thresholds.review:
        return "review"
    return "pending"


def decide(
    event_id: str,
    reasons: list[Reason],
    thresholds: Thresholds,
    policy_version: int,
    decided_at: datetime,
) -> Decision:
    """The automatic decision for one event. Rate-limited events are always rejected."""
    risk = combine(reasons)
    status: Status = status_for(risk, thresholds)
    if any(r.code.startswith("rate_limited.") for r in reasons):
        status = "rejected"
    return Decision(
        event_id=event_id,
        status=status,
        risk=round(risk, 6),
        reasons=tuple(reasons),
        policy_version=policy_version,
        decided_at=decided_at,
    )
