"""Behavioural outliers: the per-account forest, its cache and the ingest check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import redis
from sklearn.ensemble import IsolationForest

from feedbackguard.checks.base import CheckContext
from feedbackguard.consistency import outliers, recent
from feedbackguard.consistency.ingest import OutlierCheck, RecentRecorder
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Outliers, Policy
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def ctx(r: redis.Redis[bytes]) -> CheckContext:
    return CheckContext(redis=r, policy=Policy.default(), namespace=NS)


def crowd(make_event: MakeEvent, accounts: int = 100) -> list[FeedbackEvent]:
    """Each account a few agreeing labels spread over days on varied items."""
    rng = np.random.default_rng(0)
    return [
        make_event(
            at=float(rng.uniform(0, 5 * 86400)),
            account_id=f"h{a}",
            account_created_at=T0.replace(year=2024),
            item_id=f"i{rng.integers(300)}",
            value="ok",
            model_output={"label": "ok", "confidence": 0.9},
        )
        for a in range(accounts)
        for _ in range(3)
    ]


def burst(make_event: MakeEvent) -> list[FeedbackEvent]:
    """One fresh account: 60 labels in ten minutes, all against the model."""
    return [
        make_event(
            at=86400 + 10.0 * i,
            account_id="burst",
            account_created_at=T0,
            item_id=f"i{i}",
            value="bad",
            model_output={"label": "ok", "confidence": 0.99},
        )
        for i in range(60)
    ]


def window(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> recent.Recent:
    RecentRecorder()(events, ctx(r))
    return recent.load(r, NS)


def test_a_bursting_contrarian_account_is_isolated(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    found = outliers.fit(window(r, crowd(make_event) + burst(make_event)), Outliers())
    assert "burst" in found
    assert len(found) <= 4


def test_fit_flags_and_scores_what_sklearns_contamination_fit_would(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    w = window(r, crowd(make_event) + burst(make_event))
    policy = Outliers(contamination=0.05)
    names, matrix = outliers.account_features(w)
    forest = IsolationForest(contamination=policy.contamination, random_state=policy.seed)
    labels = forest.fit_predict(matrix)
    score = forest.decision_function(matrix)
    flagged = zip(names, score, labels, strict=True)
    expected = {n: round(float(s), 4) for n, s, lab in flagged if lab == -1}
    assert outliers.fit(w, policy) == expected
    assert len(expected) >= 5


def test_too_few_accounts_are_not_fitted(r: redis.Redis[bytes], make_event: MakeEvent) -> None:
    assert outliers.fit(window(r, crowd(make_event, 10) + burst(make_event)), Outliers()) == {}


def test_account_features_have_one_finite_row_per_account(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    names, matrix = outliers.account_features(window(r, crowd(make_event, 20)))
    assert len(names) == 20
    assert matrix.shape == (20, len(outliers.FEATURES))
    assert np.isfinite(matrix).all()


def test_the_check_flags_events_of_cached_outliers_only(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    outliers.save(r, NS, {"burst": -0.1})
    events = [make_event(account_id="burst"), make_event(account_id="calm")]
    found = OutlierCheck()(events, ctx(r))
    assert list(found) == [0]
    assert found[0][0].code == outliers.CODE
    outliers.save(r, NS, {})
    assert OutlierCheck()(events, ctx(r)) == {}
