"""kNN label consistency against a real Redis: reference set, ingest check, refresh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard.checks.base import AnalysisContext, CheckContext
from feedbackguard.consistency import knn, recent
from feedbackguard.consistency.analyser import ConsistencyAnalyser
from feedbackguard.consistency.ingest import KnnCheck, RecentRecorder
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph.window import value_key
from feedbackguard.policy import Knn, Policy
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def ctx(r: redis.Redis[bytes], policy: Policy | None = None) -> CheckContext:
    return CheckContext(redis=r, policy=policy or Policy.default(), namespace=NS)


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Two well separated classes "a" (around 0) and "b" (around 10) in 4 dimensions."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(0, 1, (n, 4)), rng.normal(10, 1, (n, 4))])
    return x, [value_key("a")] * n + [value_key("b")] * n


def labelled(make_event: MakeEvent, features: list[float], value: str, **kw: Any) -> FeedbackEvent:
    return make_event(value=value, payload={"features": features}, **kw)


def test_a_label_its_neighbours_contradict_is_flagged(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    knn.seed_reference(r, NS, *blobs(50))
    events = [labelled(make_event, [10.0] * 4, "a"), labelled(make_event, [10.0] * 4, "b")]
    found = KnnCheck()(events, ctx(r))
    assert list(found) == [0]
    reason = found[0][0]
    assert reason.code == knn.CODE
    assert reason.score == Policy.default().consistency.knn.max_score


def test_without_a_reference_set_nothing_is_flagged(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    assert KnnCheck()([labelled(make_event, [10.0] * 4, "a")], ctx(r)) == {}


def test_events_without_features_or_of_another_width_are_skipped(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    knn.seed_reference(r, NS, *blobs(50))
    events = [make_event(value="a"), labelled(make_event, [10.0] * 3, "a")]
    assert KnnCheck()(events, ctx(r)) == {}


def test_policy_can_switch_the_knn_check_off(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    knn.seed_reference(r, NS, *blobs(50))
    policy = Policy.default()
    off = policy.model_copy(
        update={
            "consistency": policy.consistency.model_copy(
                update={"knn": policy.consistency.knn.model_copy(update={"enabled": False})}
            )
        }
    )
    assert KnnCheck()([labelled(make_event, [10.0] * 4, "a")], ctx(r, off)) == {}


def test_a_reseeded_reference_reaches_the_check_at_once(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    x, y = blobs(50)
    knn.seed_reference(r, NS, x, y)
    event = labelled(make_event, [10.0] * 4, "a")
    assert KnnCheck()([event], ctx(r))
    knn.seed_reference(r, NS, x, [value_key("a")] * len(y))
    assert KnnCheck()([event], ctx(r)) == {}


def test_the_analyser_builds_the_reference_from_admitted_events_and_rechecks_pending(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    x, y = blobs(30)
    events = [
        labelled(make_event, row.tolist(), "a" if label == value_key("a") else "b")
        for row, label in zip(x, y, strict=True)
    ]
    odd = labelled(make_event, [10.0] * 4, "a", received_at=T0 + timedelta(hours=1))
    RecentRecorder()([*events, odd], ctx(r))
    pipe = r.pipeline()
    for e in events:  # admitted records (what release writes)
        pipe.set(f"fg:{{{NS}}}:ev:{e.event_id}", b'{"event":{},"trail":[{"status":"admitted"}]}')
    pipe.set(f"fg:{{{NS}}}:ev:{odd.event_id}", b'{"event":{},"trail":[{"status":"pending"}]}')
    pipe.execute()
    verdicts = ConsistencyAnalyser()(
        AnalysisContext(r, Policy.default(), NS, (T0 + timedelta(hours=2)).timestamp(), None)  # type: ignore[arg-type]
    )
    assert [x.code for x in verdicts[odd.event_id]] == [knn.CODE]
    assert knn.current(r, NS, Policy.default().consistency.knn) is not None
    assert len(recent.load(r, NS)) == 61


@given(st.lists(st.floats(0, 1), min_size=1, max_size=50), st.floats(0.5, 1))
def test_knn_scores_are_zero_below_the_bar_and_bounded_by_max_score(
    shares: list[float], bar: float
) -> None:
    policy = Knn(min_disagreement=bar)
    scores = knn.scores(np.array(shares), policy)
    assert np.all((scores == 0) | (scores >= round(policy.max_score / 2, 2) - 0.01))
    assert np.all(scores <= policy.max_score)
    assert np.all((np.array(shares) >= bar) == (scores > 0))


def tied_rows(queries: int, distinct: int, reference: int) -> tuple[knn.Reference, Any, list[str]]:
    """A reference of few distinct integer rows repeated with mixed labels (many
    neighbours at equal distances) and a query drawn from the same rows."""
    rng = np.random.default_rng(queries)
    pool = rng.integers(0, 17, (distinct, 64)).astype(np.float64)
    ref_x = pool[rng.integers(0, distinct, reference)]
    labels = np.array([str(i % 10) for i in range(reference)])
    query = pool[rng.integers(0, distinct, queries)]
    return knn.Reference.fit(ref_x, labels, 10), query, [str(i % 7) for i in range(queries)]


def test_distinct_rows_queried_once_find_what_the_whole_query_finds() -> None:
    # Large queries (searched by query rows) and small ones (across the reference),
    # where equally distant neighbours abound: the choice among them is kept.
    for queries, distinct, reference in ((4000, 200, 4000), (600, 100, 5000)):
        fitted, query, values = tied_rows(queries, distinct, reference)
        whole = fitted.disagreement(query, values)
        once = fitted.disagreement_once(query, values)
        assert np.array_equal(whole, once), (queries, int((whole != once).sum()))


def test_a_worker_takes_the_new_reference_after_redis_lost_its_data(
    r: redis.Redis[bytes],
) -> None:
    policy = Policy.default().consistency.knn
    x, y = blobs(50)
    knn.seed_reference(r, NS, x, y)
    before = knn.current(r, NS, policy)
    assert before is not None
    r.flushdb()  # a Redis restarted without persistence
    knn.seed_reference(r, NS, x, list(reversed(y)))
    after = knn.current(r, NS, policy)
    assert after is not None
    assert after.disagreement(np.array([[10.0] * 4]), [value_key("a")]).tolist() == [0.0]
