"""What reading the store gives back: dataset versions and stored items."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent


class Version(BaseModel):
    """A dataset version: a watermark over the rows, plus what it contains."""

    model_config = ConfigDict(frozen=True)

    version: int
    created_at: datetime
    watermark: int = Field(description="largest row id included")
    rows: int = Field(description="rows with id <= watermark")
    live: int = Field(description="rows minus quarantined: what an export contains")
    quarantined: int
    tombstones: int = Field(description="tombstones in effect up to this version")
    changed: int = Field(description="tombstones this version wrote")
    note: str
    actor: str


class StoredItem(BaseModel):
    """One row of the store, parsed."""

    model_config = ConfigDict(frozen=True)

    seq: int
    event: FeedbackEvent
    decisions: tuple[Decision, ...]
    admitted_at: datetime
    quarantined: bool = False
