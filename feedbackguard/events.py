"""The feedback event: the one contract between capture, workers, replay and the store.

Every limit here is a refusal of absurd input, not of honest feedback: they keep a
single hostile request from costing the pipeline memory or time.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_ID_CHARS = 256
MAX_TEXT_BYTES = 64 * 1024
MAX_FEATURES = 4096
MAX_VALUE_CHARS = 1024
MAX_META_CHARS = 1024

# Account creation dates outside [epoch, received_at + skew] are refused at the edges
# (capture, replay): a year-1 date would otherwise buy an old account's trust. The
# deployment's values are settings (`account_epoch`, `account_future_skew_s`).
DEFAULT_ACCOUNT_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_ACCOUNT_FUTURE_SKEW_S = 300.0
ACCOUNT_DATES = "account_dates"  # the validation-context key holding `AccountDates`

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


class AccountDates(_Strict):
    """The plausible range of `account_created_at`: not before the product's epoch, not
    more than `future_skew_s` after the event was received."""

    epoch: UtcDatetime = DEFAULT_ACCOUNT_EPOCH
    future_skew_s: float = Field(DEFAULT_ACCOUNT_FUTURE_SKEW_S, ge=0)

    def problem(self, created: datetime, received: datetime) -> str | None:
        """Why `created` is implausible for an event received at `received`, or None."""
        if created < self.epoch:
            return f"must not be before {self.epoch.isoformat()} (the account epoch)"
        latest = received + timedelta(seconds=self.future_skew_s)
        if created > latest:
            return (
                f"must not be more than {self.future_skew_s:g} s after received_at "
                f"({received.isoformat()})"
            )
        return None


def edge_context(dates: AccountDates) -> dict[str, Any]:
    """The validation context of an edge (capture, replay) that checks account dates."""
    return {ACCOUNT_DATES: dates}


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

    @model_validator(mode="after")
    def _account_created_in_range(self, info: ValidationInfo) -> Self:
        """At an edge (a validation context carrying `AccountDates`), refuse an account
        creation date before the epoch or in the future of `received_at`. Events read
        back from the inbox, the ledger or the store were checked when they came in and
        are not re-judged under settings that may have changed since."""
        dates = (info.context or {}).get(ACCOUNT_DATES)
        if not isinstance(dates, AccountDates) or self.account_created_at is None:
            return self
        problem = dates.problem(self.account_created_at, self.received_at)
        if problem is None:
            return self
        raise ValidationError.from_exception_data(
            type(self).__name__,
            [
                InitErrorDetails(
                    type=PydanticCustomError("account_created_at_range", problem),
                    loc=("account_created_at",),
                    input=self.account_created_at.isoformat(),
                )
            ],
        )

    def to_json(self) -> bytes:
        """The wire form used in the inbox stream, the spool and replay files."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str, dates: AccountDates | None = None) -> FeedbackEvent:
        """An event from its wire form; with `dates`, as an edge (account dates checked)."""
        return cls.model_validate_json(raw, context=edge_context(dates) if dates else None)
