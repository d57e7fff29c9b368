"""The web app: /metrics, /healthz, /readyz, JSON logs without raw IPs or secrets."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import redis
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from feedbackguard import inbox_writer, logs, metrics
from feedbackguard.checks.base import AnalysisContext, CheckContext, Findings, Reason, Verdicts
from feedbackguard.events import FeedbackEvent
from feedbackguard.logs import JsonFormatter, hash_ip, ip_key, set_ip_key
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.settings import Settings
from feedbackguard.web import auth
from feedbackguard.web.server import create_app, secret_key
from tests.review_helpers import PASSWORD, key_headers, log_in


def test_healthz_is_ok(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_redis_and_store(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == {"redis": "ok", "store": "ok"}


def test_readyz_is_503_when_redis_is_down(rt: Runtime) -> None:
    rt.redis = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    resp = create_app(rt).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["redis"].startswith("error")


def _take_redis_down(rt: Runtime) -> None:
    """Point the runtime's Redis at a closed port."""
    rt.redis = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )


def test_admin_api_answers_503_naming_redis_when_redis_is_down(
    client: FlaskClient, rt: Runtime
) -> None:
    headers = key_headers(rt.redis, "ops", "viewer")
    _take_redis_down(rt)
    resp = client.get("/api/v1/namespaces", headers=headers)
    assert resp.status_code == 503
    assert resp.json["error"] == "redis_unavailable"
    assert "Redis" in resp.json["message"]
    assert resp.headers["Retry-After"]


def test_review_ui_answers_503_naming_redis_when_redis_is_down(
    client: FlaskClient, rt: Runtime
) -> None:
    auth.add_user(rt.redis, "ana", "moderator", PASSWORD)
    log_in(client)
    _take_redis_down(rt)
    resp = client.get("/review/")
    assert resp.status_code == 503
    assert "Redis" in resp.get_data(as_text=True)


def test_metrics_expose_statuses_depths_and_timings(
    client: FlaskClient, rt: Runtime, make_event: Any
) -> None:
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, [make_event(), make_event()])
    pipe.execute()
    rt.pipeline.ingest_batch("default", "t")
    metrics.count_reasons(rt.redis, "default", {"rate_limited.account": 3})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'feedbackguard_events{namespace="default",status="pending"} 2.0' in text
    assert 'feedbackguard_events_captured_total{namespace="default"} 2.0' in text
    assert 'feedbackguard_queue_depth{namespace="default",queue="inbox"} 0.0' in text
    assert 'feedbackguard_batch_duration_seconds_count{namespace="default"} 1.0' in text
    assert 'reason="rate_limited.account"} 3.0' in text


class Refusing:
    """A check that gives every event a reason scored to reject."""

    name = "refusing"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        return {i: [Reason("trigger.known", "test", 0.95)] for i in range(len(events))}


def test_metrics_count_the_reasons_of_rejected_events_and_time_analysis(
    client: FlaskClient, rt: Runtime, make_event: Any
) -> None:
    rt.pipeline.checks = [Refusing()]
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, [make_event(), make_event(), make_event()])
    pipe.execute()
    rt.pipeline.ingest_batch("default", "t")
    rt.pipeline.analyse("default")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'reason="trigger.known"} 3.0' in text
    assert 'feedbackguard_analysis_duration_seconds_count{namespace="default"} 1.0' in text


class Flagging:
    """An analyser that flags every given event to reject."""

    name = "flagging"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        return {i: [Reason("sybil.dense", "test block", 0.95)] for i in self.ids}


def test_metrics_count_the_reasons_of_events_analysis_flags(
    client: FlaskClient, rt: Runtime, make_event: Any
) -> None:
    events = [make_event(), make_event()]
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, events)
    pipe.execute()
    rt.pipeline.ingest_batch("default", "t")
    rt.pipeline.analysers = [Flagging([e.event_id for e in events])]
    rt.pipeline.analyse("default")
    assert 'reason="sybil.dense"} 2.0' in client.get("/metrics").get_data(as_text=True)


def test_secret_key_is_generated_once_and_kept(settings: Settings) -> None:
    first = secret_key(settings)
    assert len(first) == 64
    assert secret_key(settings) == first


def test_json_log_hashes_ip_and_drops_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.ip = "203.0.113.9"
    record.api_key = "fgk_1_secret"
    record.event_id = "e1"
    line = orjson.loads(JsonFormatter().format(record))
    assert line["ip"] == hash_ip("203.0.113.9")
    assert line["api_key"] == "[redacted]"
    assert line["event_id"] == "e1"
    assert "203.0.113.9" not in JsonFormatter().format(record)


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookie_is_httponly_lax_and_secure_when_configured(
    r: redis.Redis[bytes], settings: Settings, secure: bool
) -> None:
    runtime = Runtime.build(settings.model_copy(update={"session_cookie_secure": secure}))
    try:
        cookie = create_app(runtime).test_client().get("/review/login").headers["Set-Cookie"]
    finally:
        runtime.close()
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def _client_hash(rt: Runtime, secret: str, ip: str) -> str:
    app = create_app(rt)
    app.secret_key = secret
    with app.test_request_context(environ_base={"REMOTE_ADDR": ip}):
        return auth.client_id()


def test_ip_hash_is_keyed_by_the_deployment_secret(rt: Runtime) -> None:
    ip = "203.0.113.9"
    first = _client_hash(rt, "deployment-one", ip)
    assert _client_hash(rt, "deployment-one", ip) == first
    assert _client_hash(rt, "deployment-two", ip) != first
    assert _client_hash(rt, "deployment-one", "203.0.113.10") != first
    unkeyed = hashlib.sha256(ip.encode()).hexdigest()[:16]
    assert unkeyed not in first


def test_ip_hash_outside_an_app_uses_the_configured_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_process_key", logs._process_key)  # restored afterwards
    ip = "198.51.100.7"
    set_ip_key("workers-secret")
    first = hash_ip(ip)
    assert hash_ip(ip) == first
    set_ip_key("another-secret")
    assert hash_ip(ip) != first
    assert hash_ip(ip, ip_key("workers-secret")) == first


@pytest.fixture
def keyed_metrics_client(rt: Runtime) -> FlaskClient:
    runtime = Runtime(
        settings=rt.settings.model_copy(update={"metrics_require_key": True}),
        redis=rt.redis,
        pipeline=rt.pipeline,
        consumer=rt.consumer,
    )
    return create_app(runtime).test_client()


def test_metrics_need_a_viewer_key_when_configured(
    keyed_metrics_client: FlaskClient, r: redis.Redis[bytes]
) -> None:
    assert keyed_metrics_client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer fgk_not_a_key"}
    assert keyed_metrics_client.get("/metrics", headers=wrong).status_code == 401
    _, secret = auth.add_key(r, "scraper", "viewer")
    resp = keyed_metrics_client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200
    assert "feedbackguard_events" in resp.get_data(as_text=True)


def test_metrics_are_open_by_default(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200
