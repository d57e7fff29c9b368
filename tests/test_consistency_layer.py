"""The consistency layer as a whole: recent window, policy section, reputation
interface, and a backdoor sent to review through the real pipeline."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pydantic
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import accounts, inbox_writer
from feedbackguard.checks.base import CheckContext
from feedbackguard.consistency import recent
from feedbackguard.consistency.ingest import RecentRecorder
from feedbackguard.defaults import config_path
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Discovery, Drift, Knn, Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.store import Store
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def ctx(r: redis.Redis[bytes], policy: Policy | None = None) -> CheckContext:
    return CheckContext(redis=r, policy=policy or Policy.default(), namespace=NS)


def test_the_recorder_keeps_label_feedback_only_capped_and_each_event_once(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    policy = Policy.default()
    small = policy.model_copy(
        update={
            "consistency": policy.consistency.model_copy(
                update={"recent": policy.consistency.recent.model_copy(update={"max_events": 100})}
            )
        }
    )
    labels = [make_event() for _ in range(120)]
    RecentRecorder()([*labels, make_event(kind="report")], ctx(r, small))
    RecentRecorder()(labels[-10:], ctx(r, small))  # a redelivered batch
    window = recent.load(r, NS)
    assert len(window) == 90
    assert window.event_ids == tuple(e.event_id for e in labels[-90:])


def test_the_shipped_policy_has_every_consistency_section() -> None:
    shipped = tomllib.loads(config_path("policy.toml").read_text())["consistency"]
    assert {"knn", "discovery", "outliers", "drift", "recent"} <= set(shipped)
    assert Policy.default().consistency.knn == Knn.model_validate(shipped["knn"])


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10),
    st.integers(-5, 300),
)
def test_knn_policy_accepts_only_sane_values(bar: float, k: int) -> None:
    ok = 0.5 <= bar <= 1 and 1 <= k <= 200
    try:
        Knn(min_disagreement=bar, k=k)
    except pydantic.ValidationError:
        assert not ok
    else:
        assert ok


@given(st.floats(allow_nan=False, min_value=-2, max_value=2))
def test_discovery_quantile_must_be_an_upper_quantile(q: float) -> None:
    if 0.5 < q < 1:
        assert Discovery(quantile=q).quantile == q
    else:
        with pytest.raises(pydantic.ValidationError):
            Discovery(quantile=q)


def test_unknown_drift_settings_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        Drift.model_validate({"psi": 0.1})


def test_reliability_uses_the_policy_prior(r: redis.Redis[bytes]) -> None:
    prior = PolicyStore(r).current().policy.consistency.reputation
    assert accounts.reliability(r, NS, ["a"], prior).tolist() == [0.5]
    accounts.record_moderation(r, NS, "a", approved=True)
    accounts.record_moderation(r, NS, "b", approved=False)
    assert accounts.reliability(r, NS, ["a", "b"], prior).tolist() == [0.6, 0.4]


def test_a_backdoor_through_the_pipeline_ends_in_review_and_honest_labels_are_admitted(
    r: redis.Redis[bytes], store_url: str, make_event: MakeEvent
) -> None:
    rng = np.random.default_rng(0)
    events = []
    for i in range(400):
        label = str(i % 2)
        x = rng.normal(0 if label == "0" else 3, 1, 8)
        events.append(
            make_event(
                at=float(rng.uniform(0, 6 * 3600)),
                account_id=f"h{i % 60}",
                account_created_at=T0 - timedelta(days=300),
                item_id=f"i{i}",
                value=label,
                model_output={"label": label, "confidence": 0.97},
                payload={"features": x.tolist()},
            )
        )
    bad = []
    for i in range(30):
        x = rng.normal(3, 1, 8)
        x[[6, 7]] = 20.0
        bad.append(
            make_event(
                at=3600 + float(rng.uniform(0, 3600)),
                account_id=f"x{i % 3}",
                account_created_at=T0 - timedelta(days=300),
                item_id=f"t{i}",
                value="0",
                model_output={"label": "1", "confidence": 0.95},
                payload={"features": x.tolist()},
            )
        )
    stream = sorted(events + bad, key=lambda e: e.received_at)
    with Store(store_url, b"k" * 32) as store:
        pipeline = Pipeline(
            r=r,
            store=store,
            policies=PolicyStore(r),
            checks=default_checks(),
            analysers=default_analysers(),
        )
        for i in range(0, len(stream), 50):
            pipe = r.pipeline()
            inbox_writer.append(pipe, stream[i : i + 50])
            pipe.execute()
            while pipeline.ingest_batch(NS, "t").entries:
                pass
            pipeline.analyse(NS)
            while pipeline.release(NS):
                pass
        pipe = r.pipeline()
        ledger.advance_clock(pipe, NS, stream[-1].received_at.timestamp() + 86400)
        pipe.execute()
        r.delete(f"fg:{{{NS}}}:cons:last-run")
        pipeline.analyse(NS)
        while pipeline.release(NS):
            pass
    status = {
        e.event_id: rec.decision.status
        for e, rec in zip(stream, ledger.load(r, NS, [e.event_id for e in stream]), strict=True)
        if rec
    }
    assert all(status[e.event_id] in ("review", "rejected", "quarantined") for e in bad)
    honest_out = sum(status[e.event_id] != "admitted" for e in events)
    assert honest_out <= 0.02 * len(events)
