"""The columnar event window and its builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard.events import FeedbackEvent
from feedbackguard.graph.window import MISSING, EventWindow, Row, Rows, subnet_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(account: str, item: str, value: object, minutes: int, **extra: object) -> FeedbackEvent:
    return FeedbackEvent.model_validate(
        {
            "kind": "vote",
            "account_id": account,
            "item_id": item,
            "value": value,
            "received_at": T0 + timedelta(minutes=minutes),
            **extra,
        }
    )


def test_from_events_codes_accounts_items_and_infrastructure() -> None:
    events = [
        _event("alice", "x", "spam", 0, ip="10.0.0.1", device_id="d1"),
        _event("bob", "x", "spam", 1, ip="10.0.0.2"),
        _event("alice", "y", "ham", 2, ip="10.0.1.1"),
    ]
    w = EventWindow.from_events(events)
    assert w.account_ids == ("alice", "bob")
    assert w.item_ids == ("x", "y")
    assert w.account.tolist() == [0, 1, 0]
    assert w.value[0] == w.value[1] != w.value[2]
    assert w.ip.tolist() == [0, 1, 2]
    assert w.subnet.tolist() == [0, 0, 1]
    assert w.device.tolist() == [0, MISSING, MISSING]


_names = st.sampled_from(["a", "b", "c", "d"])
_optional = st.none() | st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.9.1", "x"])
_rows = st.lists(
    st.tuples(
        st.just("e"),  # event id
        _names,  # account
        _names,  # item
        _names,  # value key
        st.just("v"),  # value as shown
        st.floats(0, 1e6),  # time
        _optional,  # ip
        _optional,  # device
        st.none() | st.floats(0, 1e6),  # account created
    ).map(Row._make),
    max_size=30,
)


def _first_seen(column: list[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in column if c is not None))


@given(_rows)
def test_from_rows_codes_each_column_in_order_of_first_appearance(rows: list[Row]) -> None:
    w = EventWindow.from_rows(Rows.of(rows))
    subnets = [None if r.ip is None else subnet_of(r.ip) for r in rows]
    columns = (
        (w.account, w.account_ids, [r.account for r in rows]),
        (w.item, w.item_ids, [r.item for r in rows]),
        (w.ip, w.ip_ids, [r.ip for r in rows]),
        (w.subnet, w.subnet_ids, subnets),
        (w.device, w.device_ids, [r.device for r in rows]),
    )
    for codes, ids, column in columns:
        assert ids == _first_seen(column)
        assert [None if c == MISSING else ids[c] for c in codes.tolist()] == column
    assert w.time.tolist() == [r.time for r in rows]
    for a, name in enumerate(w.account_ids):
        claims = [
            r.account_created for r in rows if r.account == name and r.account_created is not None
        ]
        assert (np.isnan(w.account_created[a]) and not claims) or w.account_created[a] == min(
            claims
        )


def test_from_events_keeps_true_and_one_apart() -> None:
    w = EventWindow.from_events([_event("a", "x", True, 0), _event("b", "x", 1, 0)])
    assert w.value[0] != w.value[1]


def test_young_uses_creation_time_and_treats_unknown_as_old() -> None:
    events = [
        _event("new", "x", 1, 0, account_created_at=T0 - timedelta(days=1)),
        _event("old", "x", 1, 0, account_created_at=T0 - timedelta(days=400)),
        _event("unknown", "x", 1, 0),
    ]
    w = EventWindow.from_events(events)
    assert w.young(7 * 86400).tolist() == [True, False, False]


def test_subnet_of_groups_ipv4_by_24_and_ipv6_by_48() -> None:
    assert subnet_of("192.168.7.42") == "192.168.7.0/24"
    assert subnet_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert subnet_of("::ffff:10.1.2.3") == "10.1.2.0/24"


@given(st.text(max_size=64))
def test_subnet_of_never_raises_and_keeps_non_addresses_apart(text: str) -> None:
    out = subnet_of(text)
    assert isinstance(out, str)
    if "/" not in out:
        assert out == text


@given(st.integers(0, 20), st.integers(0, 20))
def test_from_arrays_rejects_mismatched_lengths(n_acc: int, n_item: int) -> None:
    if n_acc == n_item:
        w = EventWindow.from_arrays(np.zeros(n_acc, int), np.zeros(n_item, int), np.zeros(n_acc))
        assert w.n_events == n_acc
    else:
        with pytest.raises(ValueError, match="shape"):
            EventWindow.from_arrays(np.zeros(n_acc, int), np.zeros(n_item, int), np.zeros(n_acc))


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=10))
def test_from_arrays_rejects_negative_codes(codes: list[int]) -> None:
    arr = np.asarray(codes)
    t = np.zeros(arr.size)
    if arr.min() < 0:
        with pytest.raises(ValueError, match=">= 0"):
            EventWindow.from_arrays(arr, np.zeros(arr.size, int), t)
    else:
        assert EventWindow.from_arrays(arr, np.zeros(arr.size, int), t).n_accounts == arr.max() + 1


def test_from_arrays_rejects_non_finite_times() -> None:
    with pytest.raises(ValueError, match="finite"):
        EventWindow.from_arrays([0], [0], [float("nan")])
