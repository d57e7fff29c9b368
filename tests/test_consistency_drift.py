"""Drift of the admitted label distribution: PSI, chi-square, alerts and lockdown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import audit
from feedbackguard.consistency import drift, recent
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Drift, lockdown
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
DAY = 86400.0
NOW = (T0 + timedelta(days=7)).timestamp()


def stream(make_event: MakeEvent, shifted: bool) -> recent.Recent:
    """Six days of 2:1 "ham":"spam"; then a day that is 2:1 as well or all "spam"."""
    events = []
    for i in range(600):
        events.append(make_event(at=i * 6 * DAY / 600, value="spam" if i % 3 == 0 else "ham"))
    for i in range(300):
        value = "spam" if shifted or i % 3 == 0 else "ham"
        events.append(make_event(at=6 * DAY + i * DAY / 300 + 1, value=value))
    rows = [recent.row_of(e) for e in events]
    return recent.Recent(
        event_ids=tuple(r[0] for r in rows),
        accounts=tuple(r[1] for r in rows),
        items=tuple(r[2] for r in rows),
        time=np.array([r[3] for r in rows]),
        values=tuple(r[4] for r in rows),
        labels=tuple(r[5] for r in rows),
        model=tuple(None for _ in rows),
        confidence=np.zeros(len(rows)),
        features=tuple(None for _ in rows),
        created=np.full(len(rows), float("nan")),
        statuses=tuple("admitted" for _ in rows),
    )


def test_a_steady_distribution_raises_nothing(make_event: MakeEvent) -> None:
    assert drift.shifts(stream(make_event, shifted=False), NOW, Drift()) == []


def test_a_sudden_shift_is_found_for_the_namespace(make_event: MakeEvent) -> None:
    found = drift.shifts(stream(make_event, shifted=True), NOW, Drift())
    scopes = {s.scope: s for s in found}
    assert "namespace" in scopes
    assert scopes["namespace"].psi >= Drift().psi_alert
    assert scopes["namespace"].p_value <= Drift().max_p_value


def test_rejected_feedback_does_not_count_as_drift(make_event: MakeEvent) -> None:
    window = stream(make_event, shifted=True)
    refused = window.with_statuses(
        ["rejected" if t > NOW - DAY else "admitted" for t in window.time.tolist()]
    )
    assert drift.shifts(refused, NOW, Drift()) == []


def test_an_alert_is_listed_audited_and_not_repeated_within_the_recent_window(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    found = drift.shifts(stream(make_event, shifted=True), NOW, Drift())
    assert drift.alert(r, NS, found, NOW, Drift()) == found
    assert drift.alert(r, NS, found, NOW + 60, Drift()) == []
    assert [a["scope"] for a in drift.alerts(r, NS)] == [s.scope for s in reversed(found)]
    assert "drift.alert" in {e["action"] for e in audit.entries(r, 10)}
    assert not lockdown.is_locked(r, NS)


def test_policy_can_make_a_drift_alert_lock_the_namespace_down(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    found = drift.shifts(stream(make_event, shifted=True), NOW, Drift())
    drift.alert(r, NS, found, NOW, Drift(lockdown=True))
    assert lockdown.is_locked(r, NS)
    assert lockdown.status(r, NS)["actor"] == "drift"  # type: ignore[index]


counts = st.dictionaries(st.sampled_from("abcde"), st.integers(0, 1000), min_size=1)


@given(counts, counts)
def test_psi_is_never_negative_and_zero_for_equal_tables(
    a: dict[str, int], b: dict[str, int]
) -> None:
    assert drift.psi(Counter(a), Counter(b)) >= -1e-12
    assert abs(drift.psi(Counter(a), Counter(a))) < 1e-12
