"""The naive baseline of `benchmarks/pipeline_throughput.py` (one RQ job per event)
does the pipeline's work for an event: a job that raises measures nothing but RQ's
failure path, which made the naive design look cheaper without anybody noticing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from benchmarks.pipeline_throughput import naive_job
from feedbackguard import keys
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import Store


def test_naive_job_decides_records_and_stores_an_honest_event(
    r: redis.Redis[bytes], redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", redis_url)
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(tmp_path))
    monkeypatch.delenv("FEEDBACKGUARD_STORE_URL", raising=False)
    monkeypatch.delenv("FEEDBACKGUARD_SIGNING_KEY", raising=False)
    Store.from_settings(Settings(), create=True).close()
    event = FeedbackEvent(
        namespace="bench", kind="label", account_id="a1", item_id="i1", value="spam",
        model_output={"label": "spam", "confidence": 0.8},
    )  # fmt: skip

    status = naive_job(event.to_json())

    assert status == "pending"
    assert r.exists(keys.record("bench", event.event_id))
    store = Store.from_settings(Settings())
    try:
        assert store.get("bench", event.event_id) is not None
    finally:
        store.close()
