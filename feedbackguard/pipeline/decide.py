"""The decision engine: every check's reasons -> one risk and one status, by policy.

Risk is the noisy-OR of the reasons' scores: independent pieces of evidence add up,
and no number of weak reasons alone reaches certainty.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from feedbackguard.checks.base import Reason
from feedbackguard.events import utcnow
from feedbackguard.policy import Thresholds

Status = Literal["pending", "admitted", "review", "rejected", "quarantined"]
FINAL_STATUSES: frozenset[str] = frozenset({"admitted", "rejected", "quarantined"})

_TIME = TypeAdapter(datetime)


class ReasonModel(BaseModel):
    """A reason as it appears in a decision (docs/architecture.md, "Decision")."""

    model_config = ConfigDict(frozen=True)

    code: str
    detail: str
    score: float = Field(ge=0.0, le=1.0)


class Decision(BaseModel):
    """What feedbackguard decided about one event, and on what grounds."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    status: Status
    risk: float = Field(ge=0.0, le=1.0)
    reasons: tuple[ReasonModel, ...] = ()
    policy_version: int
    decided_at: datetime = Field(default_factory=utcnow)
    decided_by: str = "auto"


def json_time(at: datetime) -> str:
    """`at` as a decision's JSON form carries it (`Decision.model_dump(mode="json")`),
    for code that edits decisions as JSON instead of building models."""
    text: str = _TIME.dump_python(at, mode="json")
    return text


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
        reasons=tuple(ReasonModel(code=r.code, detail=r.detail, score=r.score) for r in reasons),
        policy_version=policy_version,
        decided_at=decided_at,
    )
