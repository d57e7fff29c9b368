"""FeedbackEvent: valid events round-trip through the wire form, bad input is refused."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedbackguard.events import (
    KINDS,
    MAX_FEATURES,
    MAX_ID_CHARS,
    MAX_TEXT_BYTES,
    MAX_VALUE_CHARS,
    AccountDates,
    FeedbackEvent,
    edge_context,
)

ids = st.text(min_size=1, max_size=MAX_ID_CHARS).filter(lambda s: s.strip() == s and s)
finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    finite,
    st.text(max_size=MAX_VALUE_CHARS),
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
meta = st.text(max_size=64)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Valid event fields, optional ones present or not."""
    fields: dict[str, Any] = {
        "event_id": draw(ids),
        "namespace": draw(st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z")),
        "kind": draw(st.sampled_from(KINDS)),
        "account_id": draw(ids),
        "item_id": draw(ids),
        "value": draw(values),
        "received_at": draw(times),
    }
    optional = {
        "account_created_at": times,
        "model_output": st.fixed_dictionaries(
            {"label": values, "confidence": st.floats(min_value=0.0, max_value=1.0)}
        ),
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "text": st.text(max_size=200),
                "features": st.lists(finite, max_size=32),
            },
        ),
        "ip": meta,
        "device_id": meta,
        "user_agent": meta,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    return fields


def valid() -> dict[str, Any]:
    return {"kind": "label", "account_id": "a", "item_id": "i", "value": "spam"}


@given(events())
@settings(max_examples=200)
def test_valid_events_round_trip_through_the_wire_form(fields: dict[str, Any]) -> None:
    event = FeedbackEvent.model_validate(fields)
    assert FeedbackEvent.from_json(event.to_json()) == event


@given(events())
def test_wire_form_round_trips_from_text_too(fields: dict[str, Any]) -> None:
    event = FeedbackEvent.model_validate(fields)
    assert FeedbackEvent.from_json(event.to_json().decode()) == event


@given(st.text().filter(lambda k: k not in KINDS))
def test_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "kind": kind})


@pytest.mark.parametrize("field", ["event_id", "account_id", "item_id"])
@given(blank=st.text(alphabet=" \t\n", max_size=5))
def test_empty_ids_are_refused(field: str, blank: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), field: blank})


@pytest.mark.parametrize("field", ["event_id", "account_id", "item_id"])
@given(extra=st.integers(min_value=1, max_value=1000))
def test_ids_longer_than_256_chars_are_refused(field: str, extra: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), field: "x" * (MAX_ID_CHARS + extra)})


@given(extra=st.integers(min_value=1, max_value=4096), char=st.sampled_from(["a", "é", "😀"]))
@settings(max_examples=25)
def test_text_over_64_kib_is_refused(extra: int, char: str) -> None:
    n = (MAX_TEXT_BYTES + extra) // len(char.encode()) + 1
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "payload": {"text": char * n}})


def test_text_of_exactly_64_kib_is_accepted() -> None:
    event = FeedbackEvent.model_validate({**valid(), "payload": {"text": "a" * MAX_TEXT_BYTES}})
    assert event.payload is not None


@given(extra=st.integers(min_value=1, max_value=100))
@settings(max_examples=10)
def test_more_than_4096_features_are_refused(extra: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate(
            {**valid(), "payload": {"features": [0.5] * (MAX_FEATURES + extra)}}
        )


non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@given(bad=non_finite)
def test_non_finite_value_is_refused(bad: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "value": bad})


@given(bad=non_finite, features=st.lists(finite, max_size=10), at=st.integers(0, 10))
def test_non_finite_feature_is_refused(bad: float, features: list[float], at: int) -> None:
    features.insert(min(at, len(features)), bad)
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "payload": {"features": features}})


@given(bad=non_finite)
def test_non_finite_confidence_is_refused(bad: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "model_output": {"label": "x", "confidence": bad}})


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_json_text_are_refused(number: str) -> None:
    doc = '{"kind":"label","account_id":"a","item_id":"i","value":' + number + "}"
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.from_json(doc)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.model_validate({**valid(), "admin": True})


def test_event_id_and_received_at_are_generated_when_absent() -> None:
    a, b = FeedbackEvent.model_validate(valid()), FeedbackEvent.model_validate(valid())
    assert a.event_id != b.event_id
    assert a.received_at.tzinfo is not None


# --- account_created_at at the edges (capture, replay) ----------------------------------

EDGE = AccountDates()
received = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)


def at_edge(fields: dict[str, Any], dates: AccountDates = EDGE) -> FeedbackEvent:
    return FeedbackEvent.model_validate(fields, context=edge_context(dates))


@given(at=received, before=st.floats(min_value=0, max_value=1))
def test_account_created_between_the_epoch_and_received_at_is_accepted(
    at: datetime, before: float
) -> None:
    created = EDGE.epoch + (at - EDGE.epoch) * before
    event = at_edge({**valid(), "received_at": at, "account_created_at": created})
    assert event.account_created_at == created


@given(
    at=received,
    created=st.datetimes(max_value=datetime(1999, 12, 31, 23, 59, 59), timezones=st.just(UTC)),
)
def test_account_created_before_the_epoch_is_refused(at: datetime, created: datetime) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        at_edge({**valid(), "received_at": at, "account_created_at": created})
    assert [e["loc"] for e in exc.value.errors()] == [("account_created_at",)]


@given(at=received, ahead=st.floats(min_value=EDGE.future_skew_s + 1, max_value=1e9))
def test_account_created_past_the_skew_after_received_at_is_refused(
    at: datetime, ahead: float
) -> None:
    created = at + timedelta(seconds=ahead)
    with pytest.raises(pydantic.ValidationError) as exc:
        at_edge({**valid(), "received_at": at, "account_created_at": created})
    assert [e["loc"] for e in exc.value.errors()] == [("account_created_at",)]
    assert "after received_at" in exc.value.errors()[0]["msg"]


@given(at=received, ahead=st.floats(min_value=0, max_value=EDGE.future_skew_s))
def test_account_created_within_the_skew_after_received_at_is_accepted(
    at: datetime, ahead: float
) -> None:
    created = at + timedelta(seconds=ahead)
    assert at_edge({**valid(), "received_at": at, "account_created_at": created})


def test_the_epoch_is_the_deployments() -> None:
    fields = {**valid(), "account_created_at": datetime(2005, 1, 1, tzinfo=UTC)}
    assert at_edge(fields)
    with pytest.raises(pydantic.ValidationError):
        at_edge(fields, AccountDates(epoch=datetime(2010, 1, 1, tzinfo=UTC)))


def test_events_read_back_are_not_rejudged() -> None:
    """The inbox, ledger and store hold events checked when they came in."""
    raw = FeedbackEvent(**valid(), account_created_at=datetime(1, 1, 1, tzinfo=UTC)).to_json()
    assert FeedbackEvent.from_json(raw).account_created_at == datetime(1, 1, 1, tzinfo=UTC)
    with pytest.raises(pydantic.ValidationError):
        FeedbackEvent.from_json(raw, EDGE)
