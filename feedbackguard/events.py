"""The feedback event: the one contract between capture, workers, replay and the store.

Every limit here is a refusal of absurd input, not of honest feedback: they keep a
single hostile request from costing the pipeline memory or time.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

MAX_ID_CHARS = 256
MAX_TEXT_BYTES = 64 * 1024
MAX_FEATURES = 4096
MAX_VALUE_CHARS = 1024
MAX_META_CHARS = 1024

Kind = Literal["label", "correction", "rating", "report", "vote"]
# Kinds whose value is a label of the item: what a model learns from, and what a model
# output, the consensus or the item's neighbours can disagree with.
LABEL_KINDS: frozenset[str] = frozenset({"label", "correction"})
KINDS: tuple[Kind, ...] = ("label", "correction", "rating", "report", "vote")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


def _text_size(value: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ValueError(f"must be at most {MAX_TEXT_BYTES} bytes of UTF-8")
    return value


def _aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; everything is stored in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, strip_whitespace=True)]
Meta = Annotated[str, StringConstraints(max_length=MAX_META_CHARS)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Value = bool | int | FiniteFloat | Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
UtcDatetime = Annotated[datetime, AfterValidator(_aware)]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelOutput(_Strict):
    """What the product's model said about the item, for consistency checks."""

    label: Value
    confidence: FiniteFloat = Field(ge=0.0, le=1.0)


class Payload(_Strict):
    """The training input the feedback is about, when the product sends it."""

    text: Annotated[str, AfterValidator(_text_size)] | None = None
    features: Annotated[list[FiniteFloat], Field(max_length=MAX_FEATURES)] | None = None


class FeedbackEvent(_Strict):
    """One piece of user feedback, as captured (docs/architecture.md, "Feedback event")."""

    event_id: Id = Field(default_factory=new_event_id)
    namespace: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"),
    ] = "default"
    kind: Kind
    account_id: Id
    account_created_at: UtcDatetime | None = None
    item_id: Id
    value: Value
    model_output: ModelOutput | None = None
    payload: Payload | None = None
    ip: Meta | None = None
    device_id: Meta | None = None
    user_agent: Meta | None = None
    received_at: UtcDatetime = Field(default_factory=utcnow)

    def to_json(self) -> bytes:
        """The wire form used in the inbox stream, the spool and replay files."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> FeedbackEvent:
        return cls.model_validate_json(raw)
