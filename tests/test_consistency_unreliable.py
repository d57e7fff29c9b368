"""Unreliable accounts: mostly disputed feedback marks the account's events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import redis

from feedbackguard.checks.base import AnalysisContext, CheckContext
from feedbackguard.consistency import recent, unreliable
from feedbackguard.consistency.analyser import ConsistencyAnalyser
from feedbackguard.consistency.ingest import RecentRecorder, UnreliableCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def ctx(r: redis.Redis[bytes]) -> CheckContext:
    return CheckContext(redis=r, policy=Policy.default(), namespace=NS)


def labels(make_event: MakeEvent, account: str, n: int, against: int) -> list[FeedbackEvent]:
    """n labels, the first `against` of them contradicting a confident model."""
    return [
        make_event(
            at=60.0 * i,
            account_id=account,
            value="cat" if i < against else "dog",
            model_output={"label": "dog", "confidence": 0.97},
        )
        for i in range(n)
    ]


def window(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> recent.Recent:
    RecentRecorder()(events, ctx(r))
    return recent.load(r, NS)


def found(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> dict[str, float]:
    w = window(r, events)
    disputed = unreliable.disputed(
        w, np.empty(0, dtype=np.int64), np.empty(0), Policy.default().consistency
    )
    return unreliable.labellers(w, disputed, Policy.default().consistency)


def test_an_account_mostly_contradicting_a_confident_model_is_unreliable(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    odd = found(r, labels(make_event, "flipper", 10, 9) + labels(make_event, "honest", 10, 1))
    assert list(odd) == ["flipper"]
    assert odd["flipper"] < 0.5


def test_too_few_events_say_nothing_about_an_account(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    assert found(r, labels(make_event, "new", 4, 4)) == {}


def test_the_check_marks_new_events_of_cached_unreliable_accounts(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    unreliable.save(r, NS, {"flipper": 0.2})
    events = [make_event(account_id="flipper"), make_event(account_id="calm")]
    marked = UnreliableCheck()(events, ctx(r))
    assert list(marked) == [0]
    assert marked[0][0].code == unreliable.CODE
    assert marked[0][0].score == Policy.default().consistency.unreliable.score


def test_the_analyser_marks_every_waiting_or_admitted_event_of_an_unreliable_account(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    bad = labels(make_event, "flipper", 10, 8)
    good = labels(make_event, "honest", 10, 0)
    RecentRecorder()(bad + good, ctx(r))
    pipe = r.pipeline()
    for e in bad + good:
        pipe.set(f"fg:{{{NS}}}:ev:{e.event_id}", b'{"event":{},"trail":[{"status":"admitted"}]}')
    pipe.execute()
    now = (T0 + timedelta(days=1)).timestamp()
    verdicts = ConsistencyAnalyser()(AnalysisContext(r, Policy.default(), NS, now, None))  # type: ignore[arg-type]
    marked = {i for i, rs in verdicts.items() if any(x.code == unreliable.CODE for x in rs)}
    assert marked == {e.event_id for e in bad}
    assert unreliable.cached(r, NS, ["flipper", "honest"]).keys() == {"flipper"}
