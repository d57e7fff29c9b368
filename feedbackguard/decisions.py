"""The decision attached to every processed event (docs/architecture.md, "Decision"):
its status, risk, reasons, the policy version that decided and who decided.

A contract like `events.FeedbackEvent`: the pipeline, the review queue, the store and
the APIs all read it; `pipeline.decide` makes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from feedbackguard.events import utcnow
from feedbackguard.reasons import Reason

Status = Literal["pending", "admitted", "review", "rejected", "quarantined"]
FINAL_STATUSES: frozenset[str] = frozenset({"admitted", "rejected", "quarantined"})

NOTE_MAX = 2000
"""The longest moderator's note a decision keeps."""

_TIME = TypeAdapter(datetime)


class Decision(BaseModel):
    """What feedbackguard decided about one event, and on what grounds."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    status: Status
    risk: float = Field(ge=0.0, le=1.0)
    # What admitting the event would change, in 0..1 (0: nothing wrong is learnt or
    # acted on); decisions weigh it against `risk`, and review orders cases by it.
    harm: float = Field(default=0.0, ge=0.0, le=1.0)
    reasons: tuple[Reason, ...] = ()
    policy_version: int
    decided_at: datetime = Field(default_factory=utcnow)
    decided_by: str = "auto"
    # Why a moderator decided so (kept in the trail, so the store's export carries it).
    note: str = Field(default="", max_length=NOTE_MAX)


def json_time(at: datetime) -> str:
    """`at` as a decision's JSON form carries it (`Decision.model_dump(mode="json")`),
    for code that edits decisions as JSON instead of building models."""
    text: str = _TIME.dump_python(at, mode="json")
    return text
