"""Putting events in review through the real pipeline, for the review tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from feedbackguard import inbox_writer, keys
from feedbackguard.checks.base import AnalysisContext, Reason, Verdicts
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger, state
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.settings import Settings
from feedbackguard.web import auth
from feedbackguard.web.context import init_runtime
from feedbackguard.web.review import create_review_blueprint
from feedbackguard.web.server import create_app

NS = "default"


class Flags:
    """An analyser that sends the given events to review with the given reasons."""

    name = "flags"

    def __init__(self, reasons: Mapping[str, Sequence[Reason]]) -> None:
        self.reasons = reasons

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        return {i: list(found) for i, found in self.reasons.items()}


def hostile_event(
    make_event: Callable[..., FeedbackEvent], text: str, **fields: object
) -> FeedbackEvent:
    """An event with attacker-chosen `text` in every field a moderator sees."""
    return make_event(
        **{
            "account_id": "acct" + text,
            "item_id": "item" + text,
            "value": text,
            "device_id": text,
            "user_agent": text,
            # The model disagrees, unsure: nothing independent backs the label, so the
            # flag of `send_to_review` sends it to review.
            "model_output": {"label": "model " + text, "confidence": 0.6},
            "payload": {"text": text},
            **fields,
        }
    )


def send_to_review(
    pipeline: Pipeline,
    r: redis.Redis[bytes],
    events: Sequence[FeedbackEvent],
    code: str = "coordination.lockstep",
    score: float = 0.6,
    per_event: Mapping[str, Sequence[Reason]] | None = None,
) -> None:
    """Ingest `events` and flag them (risk `score` under `code`, or `per_event`)."""
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, list(events))
    pipe.execute()
    while pipeline.ingest_batch(NS, "test").entries:
        pass
    reasons = dict(per_event or {})
    for event in events:
        reasons.setdefault(event.event_id, [Reason(code, "test group", score)])
    pipeline.analysers = [Flags(reasons)]
    pipeline.analyse(NS)


# --- fixtures (registered for every test module by conftest's pytest_plugins) --------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def review_app(r: redis.Redis[bytes], settings: Settings, pipeline: Pipeline) -> Flask:
    flask_app = Flask(__name__)
    flask_app.secret_key = "test-secret"
    flask_app.config["TESTING"] = True
    init_runtime(flask_app, Runtime(settings=settings, redis=r, pipeline=pipeline, consumer="test"))
    flask_app.register_blueprint(create_review_blueprint(), url_prefix="/review")
    for name, role in (("ana", "moderator"), ("bo", "moderator"), ("vi", "viewer")):
        auth.add_user(r, name, role, PASSWORD)
    return flask_app


@pytest.fixture
def review_client(review_app: Flask) -> FlaskClient:
    return review_app.test_client()


def csrf_of(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        token = sess.get("fg_csrf")
    if not token:
        client.get("/review/login")
        with client.session_transaction() as sess:
            token = sess["fg_csrf"]
    return str(token)


def log_in(client: FlaskClient, name: str = "ana") -> str:
    """Log `name` in through the form; returns the session's CSRF token."""
    token = csrf_of(client)
    resp = client.post(
        "/review/login", data={"username": name, "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 302, resp.data
    return csrf_of(client)


def key_headers(r: redis.Redis[bytes], name: str, role: str) -> dict[str, str]:
    _, secret = auth.add_key(r, name, role)
    return {"Authorization": f"Bearer {secret}"}


# --- the whole web app (`feedbackguard serve`'s), for the admin, auth and server tests -


@pytest.fixture
def rt(r: redis.Redis[bytes], settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, create_store=True)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> FlaskClient:
    return create_app(rt).test_client()


def put_in_review(
    r: redis.Redis[bytes],
    events: Sequence[FeedbackEvent],
    reasons: Sequence[Reason] = (Reason("outlier", "test", 0.6),),
    *,
    risk: float = 0.6,
    harm: float = 0.0,
) -> None:
    """Write `events` straight into review through the state machine, each decided with
    `reasons`, `risk` and `harm` (as ingest would, without the checks)."""
    changes = []
    for event in events:
        decision = Decision(
            event_id=event.event_id,
            status="review",
            risk=risk,
            harm=harm,
            reasons=tuple(reasons),
            policy_version=1,
        )
        record = ledger.RawRecord(event.to_json(), [decision.model_dump(mode="json")])
        changes.append(
            state.change(
                record,
                account_id=event.account_id,
                received_at=event.received_at.timestamp(),
            )
        )
    pipe = r.pipeline(transaction=True)
    state.apply(pipe, NS, changes, ttl_s=86400)
    pipe.sadd(keys.namespaces(), NS)  # as capture does
    if events:
        ledger.advance_clock(pipe, NS, max(e.received_at.timestamp() for e in events))
    pipe.execute()
