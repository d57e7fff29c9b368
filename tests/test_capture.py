"""Capture: the Flask extension, against a real Redis."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import redis
from hypothesis import assume, given
from hypothesis import strategies as st

from feedbackguard import keys
from feedbackguard.capture import CaptureConfigError, CircuitBreaker, FeedbackGuard
from feedbackguard.capture.body import deeper_than
from feedbackguard.capture.sources import PREFIXES, compile_source
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import (
    MAX_FEATURES,
    MAX_ID_CHARS,
    MAX_TEXT_BYTES,
    FeedbackEvent,
    ModelOutput,
    Payload,
)
from feedbackguard.settings import Settings

ROUTE_SPEC: dict[str, Any] = {
    "kind": "label",
    "account": "header:X-User",
    "item": "view:item_id",
    "value": "json:label",
    "model_output": "json:model",
    "payload": "json:payload",
    "namespace": "json:ns",
    "account_created_at": "json:created",
}


def build_app(settings: Settings, **config: Any) -> tuple[flask.Flask, FeedbackGuard]:
    """A product app with one decorated feedback view and one route-table view."""
    app = flask.Flask(__name__)
    app.config.update(config)
    app.config.setdefault("FEEDBACKGUARD_ROUTES", {"table_feedback": ROUTE_SPEC})
    guard = FeedbackGuard(app, settings=settings)

    @app.post("/items/<item_id>/feedback")
    @guard.feedback(**ROUTE_SPEC)
    def feedback(item_id: str) -> dict[str, Any]:
        return {"ok": True, "item": item_id, "queued_before_view": _inbox_len(settings)}

    @app.post("/table/<item_id>/feedback", endpoint="table_feedback")
    def table_feedback(item_id: str) -> dict[str, Any]:
        return {"ok": True, "item": item_id}

    return app, guard


def _inbox_len(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        return int(client.xlen(keys.inbox("default")))
    finally:
        client.close()


@pytest.fixture
def capture_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"spool_retry_s": 3600.0})


@pytest.fixture
def app_guard(
    r: redis.Redis[bytes], capture_settings: Settings
) -> Iterator[tuple[flask.Flask, FeedbackGuard]]:
    app, guard = build_app(capture_settings)
    yield app, guard
    guard.close()


@pytest.fixture
def client(app_guard: tuple[flask.Flask, FeedbackGuard]) -> flask.testing.FlaskClient:
    return app_guard[0].test_client()


def inbox_events(r: redis.Redis[bytes], namespace: str = "default") -> list[FeedbackEvent]:
    return [FeedbackEvent.from_json(fields[b"e"]) for _, fields in r.xrange(keys.inbox(namespace))]


def post(
    client: flask.testing.FlaskClient,
    body: Any = None,
    *,
    path: str = "/items/t-1/feedback",
    headers: dict[str, str] | None = None,
    remote_addr: str = "198.51.100.7",
    **kwargs: Any,
) -> Any:
    all_headers = {"X-User": "alice", **(headers or {})}
    if body is None and "data" not in kwargs:
        body = {"label": "billing"}
    return client.post(
        path,
        json=body,
        headers=all_headers,
        environ_base={"REMOTE_ADDR": remote_addr},
        **kwargs,
    )


def test_valid_feedback_lands_in_the_inbox_stream_with_request_context(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    resp = post(
        client,
        {
            "label": "billing",
            "model": {"label": "bug", "confidence": 0.8},
            "payload": {"text": "hi"},
        },
        headers={"User-Agent": "pytest-agent", "X-Device-Id": "dev-42"},
    )
    assert resp.status_code == 200
    [event] = inbox_events(r)
    assert (event.kind, event.account_id, event.item_id, event.value) == (
        "label",
        "alice",
        "t-1",
        "billing",
    )
    assert event.model_output == ModelOutput(label="bug", confidence=0.8)
    assert event.payload == Payload(text="hi")
    assert (event.ip, event.device_id, event.user_agent) == (
        "198.51.100.7",
        "dev-42",
        "pytest-agent",
    )
    assert r.smembers(keys.namespaces()) == {b"default"}


def test_event_is_queued_before_the_view_runs(client: flask.testing.FlaskClient) -> None:
    assert post(client).get_json()["queued_before_view"] == 1


def test_product_response_is_the_views_own(client: flask.testing.FlaskClient) -> None:
    assert post(client).get_json() == {"ok": True, "item": "t-1", "queued_before_view": 1}


def test_namespace_from_the_request_selects_the_inbox(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    post(client, {"label": "x", "ns": "tickets"})
    assert [e.namespace for e in inbox_events(r, "tickets")] == ["tickets"]
    assert r.smembers(keys.namespaces()) == {b"tickets"}


def test_device_id_falls_back_to_the_cookie(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    client.set_cookie("fg_device", "cookie-dev")
    post(client)
    assert inbox_events(r)[0].device_id == "cookie-dev"


def test_counters_count_captured_events(
    app_guard: tuple[flask.Flask, FeedbackGuard], client: flask.testing.FlaskClient
) -> None:
    for _ in range(3):
        post(client)
    assert app_guard[1].counters.captured == 3


BAD_REQUESTS = [
    pytest.param({}, {}, "value", id="missing-value"),
    pytest.param({"label": "x" * 2000}, {}, "value", id="value-too-long"),
    pytest.param({"label": "x"}, {"X-User": ""}, "account_id", id="empty-account"),
    pytest.param(
        {"label": "x"}, {"X-User": "a" * (MAX_ID_CHARS + 1)}, "account_id", id="long-account"
    ),
    pytest.param(
        {"label": "x", "payload": {"text": "a" * (MAX_TEXT_BYTES + 1)}},
        {},
        "payload.text",
        id="text-too-big",
    ),
    pytest.param(
        {"label": "x", "payload": {"features": [0.0] * (MAX_FEATURES + 1)}},
        {},
        "payload.features",
        id="too-many-features",
    ),
    pytest.param(
        {"label": "x", "model": {"label": "y", "confidence": 1.5}},
        {},
        "model_output.confidence",
        id="confidence-out-of-range",
    ),
    pytest.param({"label": "x", "ns": "no spaces!"}, {}, "namespace", id="bad-namespace"),
    pytest.param(
        {"label": "x", "created": "0001-01-01T00:00:00Z"},
        {},
        "account_created_at",
        id="account-created-before-the-epoch",
    ),
    pytest.param(
        {"label": "x", "created": "9999-12-31T00:00:00Z"},
        {},
        "account_created_at",
        id="account-created-in-the-future",
    ),
    pytest.param(
        {"label": "x"},
        {"Idempotency-Key": "k" * (MAX_ID_CHARS + 1)},
        "event_id",
        id="long-idempotency-key",
    ),
]


@pytest.mark.parametrize(("body", "headers", "field"), BAD_REQUESTS)
def test_invalid_feedback_gets_422_naming_the_field_and_queues_nothing(
    client: flask.testing.FlaskClient,
    r: redis.Redis[bytes],
    body: dict[str, Any],
    headers: dict[str, str],
    field: str,
) -> None:
    resp = post(client, body, headers=headers)
    assert resp.status_code == 422
    doc = resp.get_json()
    assert doc["error"] == "invalid_feedback"
    assert [f["field"] for f in doc["fields"]] == [field]
    assert all(f["message"] for f in doc["fields"])
    assert r.xlen(keys.inbox("default")) == 0
    assert r.keys("fg:*") == []


def test_nan_value_is_refused_naming_value(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    resp = post(client, data='{"label": NaN}', content_type="application/json")
    assert resp.status_code == 422
    assert resp.get_json()["fields"][0]["field"] == "value"
    assert "finite" in resp.get_json()["fields"][0]["message"]
    assert r.keys("fg:*") == []


def test_invalid_feedback_counts_as_invalid(
    app_guard: tuple[flask.Flask, FeedbackGuard], client: flask.testing.FlaskClient
) -> None:
    post(client, {})
    assert app_guard[1].counters.invalid == 1
    assert app_guard[1].counters.captured == 0


def test_pass_mode_runs_the_view_and_counts_the_drop(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"invalid_feedback": "pass"}))
    try:
        resp = post(app.test_client(), {})
        assert resp.status_code == 200
        assert resp.get_json()["ok"] is True
        assert guard.counters.invalid == 1
        assert r.xlen(keys.inbox("default")) == 0
    finally:
        guard.close()


def test_forwarded_for_is_ignored_without_trusted_proxies(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    post(client, headers={"X-Forwarded-For": "6.6.6.6"}, remote_addr="198.51.100.7")
    assert inbox_events(r)[0].ip == "198.51.100.7"


def test_one_trusted_proxy_takes_the_address_it_appended_not_a_spoofed_one(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"trusted_proxies": 1}))
    try:
        # The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the real peer.
        post(
            app.test_client(),
            headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"},
            remote_addr="10.0.0.2",
        )
        assert inbox_events(r)[0].ip == "203.0.113.9"
    finally:
        guard.close()


def test_trusted_proxy_without_forwarded_for_uses_the_peer_address(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"trusted_proxies": 1}))
    try:
        post(app.test_client(), remote_addr="10.0.0.2")
        assert inbox_events(r)[0].ip == "10.0.0.2"
    finally:
        guard.close()


def test_idempotency_key_becomes_the_event_id(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    post(client, headers={"Idempotency-Key": "req-123"})
    assert inbox_events(r)[0].event_id == "req-123"


def test_route_table_marks_an_undecorated_endpoint(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    resp = post(client, path="/table/t-9/feedback")
    assert resp.status_code == 200
    [event] = inbox_events(r)
    assert event.item_id == "t-9"


def test_route_table_refuses_invalid_feedback(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes]
) -> None:
    resp = post(client, {}, path="/table/t-9/feedback")
    assert resp.status_code == 422
    assert r.keys("fg:*") == []


def test_decorated_view_in_the_route_table_is_captured_once(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings, FEEDBACKGUARD_ROUTES={"feedback": ROUTE_SPEC})
    try:
        post(app.test_client())
        assert r.xlen(keys.inbox("default")) == 1
    finally:
        guard.close()


def test_sources_from_g_and_callables_and_integer_ids(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=capture_settings)

    @app.before_request
    def login() -> None:
        flask.g.user_id = 1234

    @app.post("/rate/<int:product>")
    @guard.feedback(kind="rating", account="g:user_id", item="view:product", value=lambda: 5)
    def rate(product: int) -> str:
        return "thanks"

    try:
        assert app.test_client().post("/rate/77").status_code == 200
        [event] = inbox_events(r)
        assert (event.kind, event.account_id, event.item_id, event.value) == (
            "rating",
            "1234",
            "77",
            5,
        )
    finally:
        guard.close()


def test_unknown_spec_keys_fail_at_registration() -> None:
    guard = FeedbackGuard()
    with pytest.raises(ValueError, match="unknown feedback spec keys"):
        guard.feedback(kind="label", account="a", item="i", value="v", acount="typo")


def test_init_app_keeps_state_in_app_extensions(
    app_guard: tuple[flask.Flask, FeedbackGuard],
) -> None:
    app, guard = app_guard
    assert app.extensions["feedbackguard"] is guard.capture_of(app)


def test_buffered_mode_delivers_after_flush(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"capture_mode": "buffered"}))
    try:
        client = app.test_client()
        for _ in range(5):
            assert post(client).status_code == 200
        guard.flush()
        assert r.xlen(keys.inbox("default")) == 5
        assert guard.counters.captured == 5
    finally:
        guard.close()


def test_example_shop_captures_a_correction_with_model_output_and_text(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    from examples.shop import create_app

    app = create_app(capture_settings.model_dump(include={"redis_url", "home", "spool_retry_s"}))
    client = app.test_client()
    ticket = client.post(
        "/tickets", json={"text": "my parcel never arrived"}, headers={"X-User": "u1"}
    )
    resp = client.post(
        f"/tickets/{ticket.get_json()['id']}/feedback",
        json={"label": "shipping"},
        headers={"X-User": "u1"},
    )
    assert resp.get_json()["status"] == "thanks"
    [event] = inbox_events(r, "tickets")
    assert (event.kind, event.value) == ("correction", "shipping")
    assert event.payload == Payload(text="my parcel never arrived")
    assert event.model_output is not None
    app.extensions["feedbackguard"].close()


# -- a Flask extension: several apps, nothing started before the first request -------


def _decorated_app(guard: FeedbackGuard, **config: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(config)
    guard.init_app(app)

    @app.post("/items/<item_id>/feedback")
    @guard.feedback(**ROUTE_SPEC)
    def feedback(item_id: str) -> dict[str, Any]:
        return {"ok": True}

    return app


def test_one_guard_serves_two_apps_each_with_its_own_config(
    r: redis.Redis[bytes], redis_url: str, tmp_path: Path
) -> None:
    guard = FeedbackGuard()
    common = {"FEEDBACKGUARD_REDIS_URL": redis_url, "FEEDBACKGUARD_SPOOL_RETRY_S": 3600.0}
    strict = _decorated_app(guard, FEEDBACKGUARD_HOME=str(tmp_path / "a"), **common)
    lenient = _decorated_app(
        guard,
        FEEDBACKGUARD_HOME=str(tmp_path / "b"),
        FEEDBACKGUARD_INVALID_FEEDBACK="pass",
        **common,
    )
    try:
        assert strict.extensions["feedbackguard"] is not lenient.extensions["feedbackguard"]
        assert post(strict.test_client(), {}).status_code == 422
        assert post(lenient.test_client(), {}).status_code == 200
        assert post(lenient.test_client(), {"label": "x", "ns": "lenient"}).status_code == 200
        strict_counts, lenient_counts = (guard.capture_of(a).counters for a in (strict, lenient))
        assert (strict_counts.invalid, strict_counts.captured) == (1, 0)
        assert (lenient_counts.invalid, lenient_counts.captured) == (1, 1)
        assert guard.capture_of(strict).spool.path.parent == tmp_path / "a"
        assert guard.capture_of(lenient).spool.path.parent == tmp_path / "b"
        assert [e.namespace for e in inbox_events(r, "lenient")] == ["lenient"]
    finally:
        guard.close()


def _children() -> list[int]:
    """This process's child processes (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()):
            found.append(int(status.parent.name))
    return found


@pytest.fixture
def embedded_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A FEEDBACKGUARD_HOME whose embedded Redis is the default (no URL configured)."""
    monkeypatch.delenv("FEEDBACKGUARD_REDIS_URL", raising=False)
    home = tmp_path / "embedded-home"
    yield home
    EmbeddedRedis(home).stop()


def test_construction_and_init_app_start_nothing(embedded_home: Path) -> None:
    threads, children = set(threading.enumerate()), _children()
    guard = FeedbackGuard()
    app = _decorated_app(
        guard, FEEDBACKGUARD_HOME=str(embedded_home), FEEDBACKGUARD_CAPTURE_MODE="buffered"
    )
    FeedbackGuard(flask.Flask(__name__))
    # Earlier tests' threads may end meanwhile; none may begin.
    assert set(threading.enumerate()) <= threads
    assert set(_children()) <= set(children)
    assert not EmbeddedRedis(embedded_home).is_running()
    assert not (embedded_home / "redis").exists()
    assert app.extensions["feedbackguard"].settings.redis_url is None
    guard.close()


def test_the_first_request_starts_what_capture_needs(embedded_home: Path) -> None:
    guard = FeedbackGuard()
    app = _decorated_app(
        guard, FEEDBACKGUARD_HOME=str(embedded_home), FEEDBACKGUARD_SPOOL_RETRY_S=3600.0
    )
    try:
        assert post(app.test_client()).status_code == 200
        assert EmbeddedRedis(embedded_home).is_running()
        assert "feedbackguard-spool" in {t.name for t in threading.enumerate()}
        assert guard.counters.captured == 1
        with redis.Redis.from_url(EmbeddedRedis(embedded_home).url) as embedded:
            assert embedded.xlen(keys.inbox("default")) == 1
    finally:
        guard.close()


def test_a_configured_redis_url_never_starts_the_embedded_server(
    r: redis.Redis[bytes], redis_url: str, embedded_home: Path
) -> None:
    guard = FeedbackGuard()
    app = _decorated_app(
        guard,
        FEEDBACKGUARD_HOME=str(embedded_home),
        FEEDBACKGUARD_REDIS_URL=redis_url,
        FEEDBACKGUARD_SPOOL_RETRY_S=3600.0,
    )
    try:
        assert post(app.test_client()).status_code == 200
        assert r.xlen(keys.inbox("default")) == 1
        assert not EmbeddedRedis(embedded_home).is_running()
    finally:
        guard.close()


def test_the_package_exports_the_public_api() -> None:
    import feedbackguard

    assert feedbackguard.FeedbackGuard is FeedbackGuard
    assert feedbackguard.FeedbackEvent is FeedbackEvent


# -- the circuit breaker, on a fake clock -------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_stays_closed_until_a_failure() -> None:
    breaker = CircuitBreaker(5.0, FakeClock())
    assert breaker.allow()
    assert breaker.allow()
    assert not breaker.is_open


def test_breaker_opens_on_failure_for_its_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(5.0, clock)
    breaker.failure()
    assert breaker.is_open
    clock.now += 4.9
    assert not breaker.allow()


def test_breaker_lets_one_trial_through_per_cooldown_then_closes_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(5.0, clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # the others wait for its outcome
    clock.now += 5.0
    assert breaker.allow()  # the next trial
    breaker.success()
    assert not breaker.is_open
    assert breaker.allow()


def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(5.0, clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.allow()
    breaker.failure()
    clock.now += 4.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


# --- body bounds: size and nesting -------------------------------------------------------


def _nested(depth: int) -> Any:
    body: Any = "x"
    for _ in range(depth):
        body = [body]
    return body


def test_a_deeply_nested_body_answers_422_naming_the_limit_not_500(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    raw = '{"label": "billing", "payload": ' + "[" * 1000 + "]" * 1000 + "}"
    resp = post(client, data=raw, content_type="application/json")
    assert resp.status_code == 422
    [field] = resp.json["fields"]
    assert field["field"] == "body"
    assert f"max_json_depth ({capture_settings.max_json_depth} levels)" in field["message"]
    assert inbox_events(r) == []


def test_a_body_nested_just_within_the_limit_is_captured(
    client: flask.testing.FlaskClient, r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    # The body object itself is one level; the spec does not read "extra".
    inner = _nested(capture_settings.max_json_depth - 1)
    resp = post(client, {"label": "billing", "extra": inner})
    assert resp.status_code == 200
    assert len(inbox_events(r)) == 1


def test_a_body_past_max_body_bytes_by_content_length_answers_413(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"max_body_bytes": 1000}))
    try:
        body = {"label": "billing", "payload": {"text": "x" * 2000}}
        resp = post(app.test_client(), body)
        assert resp.status_code == 413
        assert resp.json == {
            "error": "feedback_too_large",
            "limit_bytes": 1000,
            "message": "the request body is larger than max_body_bytes (1000 bytes)",
        }
        assert inbox_events(r) == []
        assert guard.counters.invalid == 1
    finally:
        guard.close()


def test_a_chunked_body_past_max_body_bytes_answers_413_without_reading_it_all(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings.model_copy(update={"max_body_bytes": 1000}))
    raw = b'{"label": "billing", "payload": {"text": "' + b"x" * 50_000 + b'"}}'
    stream = io.BytesIO(raw)
    try:
        resp = app.test_client().post(
            "/items/t-1/feedback",
            input_stream=stream,
            headers={
                "X-User": "alice",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert resp.status_code == 413
        assert stream.tell() <= 1000 + 64 * 1024  # one read buffer past the limit at most
        assert inbox_events(r) == []
    finally:
        guard.close()


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=40))
def test_depth_is_measured_exactly_without_recursion(depth: int, limit: int) -> None:
    assert deeper_than(_nested(depth), limit) == (depth > limit)
    assert deeper_than({"a": [1, {"b": _nested(depth)}]}, limit) == (depth + 3 > limit)


# -- mistakes fail at start-up, not per request -------------------------------------------

GOOD = {"kind": "label", "account": "header:X-User", "item": "view:item_id", "value": "json:label"}


def test_an_unknown_source_prefix_is_refused_when_the_spec_is_built() -> None:
    with pytest.raises(CaptureConfigError, match=r"value: 'jsn:stars'.*did you mean 'json:'"):
        FeedbackGuard().feedback(**{**GOOD, "value": "jsn:stars"})


def test_bare_text_is_refused_as_a_source_and_const_is_the_constant() -> None:
    with pytest.raises(CaptureConfigError, match=r"account: 'user_id'.*'const:user_id'"):
        FeedbackGuard().feedback(**{**GOOD, "account": "user_id"})


def test_const_text_is_sent_as_the_constant(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=capture_settings)

    @app.post("/items/<item_id>/report")
    @guard.feedback(**{**GOOD, "kind": "report", "value": "const:spam"})
    def report(item_id: str) -> str:
        return "thanks"

    try:
        assert post(app.test_client(), path="/items/t-1/report").status_code == 200
        assert inbox_events(r)[0].value == "spam"
    finally:
        guard.close()


def test_an_unknown_kind_is_refused_when_the_spec_is_built() -> None:
    with pytest.raises(CaptureConfigError, match=r"kind: 'lable' is not a kind.*'label'"):
        FeedbackGuard().feedback(**{**GOOD, "kind": "lable"})


def test_a_bad_namespace_constant_is_refused_when_the_spec_is_built() -> None:
    with pytest.raises(CaptureConfigError, match="namespace: 'no spaces!'"):
        FeedbackGuard().feedback(**GOOD, namespace="no spaces!")


def test_a_bad_route_table_source_is_refused_by_init_app_naming_the_entry(
    capture_settings: Settings,
) -> None:
    app = flask.Flask(__name__)
    app.config["FEEDBACKGUARD_ROUTES"] = {"rate": {**GOOD, "item": "veiw:item_id"}}
    with pytest.raises(CaptureConfigError, match=r"FEEDBACKGUARD_ROUTES\['rate'\]: item:"):
        FeedbackGuard(app, settings=capture_settings)


def test_a_route_table_endpoint_the_app_lacks_fails_validate_naming_it(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings, FEEDBACKGUARD_ROUTES={"table_feedbak": ROUTE_SPEC})
    with pytest.raises(CaptureConfigError, match=r"'table_feedbak'.*did you mean 'table_feedback'"):
        guard.validate(app)
    guard.close()


def test_without_validate_the_first_request_fails_on_a_missing_route_table_endpoint(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = build_app(capture_settings, FEEDBACKGUARD_ROUTES={"table_feedbak": ROUTE_SPEC})
    app.testing = True  # the error reaches the test instead of a 500
    try:
        with pytest.raises(CaptureConfigError, match="table_feedbak"):
            post(app.test_client(), path="/table/t-9/feedback")
        assert r.keys("fg:*") == []
    finally:
        guard.close()


def test_a_view_source_the_rule_lacks_fails_validate(capture_settings: Settings) -> None:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=capture_settings)

    @app.post("/posts/<post_id>/report")
    @guard.feedback(**GOOD)
    def report(post_id: str) -> str:
        return "thanks"

    with pytest.raises(CaptureConfigError, match=r"view:item_id: the rule '/posts/<post_id>"):
        guard.validate(app)


def test_a_valid_app_validates(app_guard: tuple[flask.Flask, FeedbackGuard]) -> None:
    app, guard = app_guard
    guard.validate(app)


def _form_app(settings: Settings, **spec: Any) -> tuple[flask.Flask, FeedbackGuard]:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=settings)

    @app.post("/posts/<post_id>/report")
    @guard.feedback(
        kind="report", account="form:user", item="view:post_id", value="form:reason", **spec
    )
    def report(post_id: str) -> str:
        return f"thanks {flask.request.form['reason']}"

    return app, guard


def test_form_sources_capture_an_html_form_post(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = _form_app(capture_settings)
    try:
        resp = app.test_client().post("/posts/p-7/report", data={"user": "u1", "reason": "spam"})
        assert resp.status_code == 200
        assert resp.text == "thanks spam"  # the view still reads the form
        [event] = inbox_events(r)
        assert (event.kind, event.account_id, event.item_id, event.value) == (
            "report",
            "u1",
            "p-7",
            "spam",
        )
    finally:
        guard.close()


def test_a_form_body_past_max_body_bytes_answers_413(
    r: redis.Redis[bytes], capture_settings: Settings
) -> None:
    app, guard = _form_app(capture_settings.model_copy(update={"max_body_bytes": 1000}))
    try:
        data = {"user": "u1", "reason": "x" * 5000}
        assert app.test_client().post("/posts/p-7/report", data=data).status_code == 413
        assert inbox_events(r) == []
    finally:
        guard.close()


def test_an_endpoint_that_never_supplies_account_age_is_warned_once(
    r: redis.Redis[bytes], capture_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app, guard = _form_app(capture_settings)
    try:
        with caplog.at_level("WARNING", logger="feedbackguard"):
            for _ in range(2):
                app.test_client().post("/posts/p-7/report", data={"user": "u", "reason": "x"})
        [warning] = [rec for rec in caplog.records if "account_created_at" in rec.getMessage()]
        assert "'report'" in warning.getMessage()
    finally:
        guard.close()


def test_an_endpoint_with_account_age_is_not_warned(
    r: redis.Redis[bytes], capture_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app, guard = _form_app(capture_settings, account_created_at="form:since")
    try:
        with caplog.at_level("WARNING", logger="feedbackguard"):
            guard.validate(app)
        assert not [rec for rec in caplog.records if "account_created_at" in rec.getMessage()]
    finally:
        guard.close()


def test_a_misspelt_json_path_is_logged_once_naming_the_key_the_body_has(
    client: flask.testing.FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="feedbackguard"):
        for _ in range(3):
            assert post(client, {"lable": "billing"}).status_code == 422
    [warning] = [rec for rec in caplog.records if "misspelt" in rec.getMessage()]
    assert "json:label found nothing for value, but the body has 'lable'" in warning.getMessage()


def test_a_json_spec_sent_a_form_is_logged_once(
    client: flask.testing.FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="feedbackguard"):
        for _ in range(2):
            resp = client.post("/items/t-1/feedback", data={"label": "x"}, headers={"X-User": "a"})
            assert resp.status_code == 422
    [warning] = [rec for rec in caplog.records if "not JSON" in rec.getMessage()]
    assert "form:" in warning.getMessage()


@given(st.text(max_size=40))
def test_text_without_a_known_prefix_is_never_taken_as_a_constant(text: str) -> None:
    assume(not text.startswith(PREFIXES))
    with pytest.raises(ValueError, match="is not a field source"):
        compile_source(text, "account")


@given(
    st.sampled_from(PREFIXES[:-1]), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
)
def test_every_prefix_with_a_name_compiles(prefix: str, name: str) -> None:
    assume(prefix != "json:" or (".." not in name and not name.endswith(".")))
    compile_source(prefix + name, "account")
