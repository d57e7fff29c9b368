"""Capture: the Flask extension that turns a product's feedback requests into events.

    guard = FeedbackGuard(app)                    # or guard.init_app(app) later

    @app.post("/tickets/<ticket_id>/feedback")
    @guard.feedback(kind="correction", namespace="tickets", account="g:user_id",
                    account_created_at="g:user_created_at", item="view:ticket_id",
                    value="json:label", payload=lambda: {"text": load(...)})
    def feedback(ticket_id): ...

    guard.validate(app)                           # once the routes are registered

or, without touching the views, a route table in the Flask config:

    FEEDBACKGUARD_ROUTES = {"feedback": {"kind": "correction", "account": "g:user_id",
                                         "item": "view:ticket_id", "value": "json:label"}}

A field source is "json:a.b.0" (path in the request JSON), "form:name" (HTML form
field), "view:name" (URL variable), "g:name" (attribute of flask.g), "header:Name",
"const:text", a callable taking no argument (called in the request context) or a
value that is not text (a constant); `kind` and `namespace` also take their bare
constant ("label", "tickets"). Any other text is refused when the spec is built, and
the route table's endpoints and `view:` variables are checked against the app's
routes by `guard.validate(app)` or before the first request (`CaptureConfigError`
naming the entry), so a typo fails at start-up instead of in every request.

Before the view runs, the event is validated (pydantic, docs/architecture.md's
contract), request context is added (client IP per `trusted_proxies`, device id,
user agent, server time, `Idempotency-Key` as event_id) and the event is appended to
`fg:{ns}:inbox` in one Redis round trip. Invalid feedback answers 422 naming the
field (or, with `invalid_feedback = "pass"`, is counted and the view runs as usual).
Capture never changes the product's own answer because of Redis: on a failure or
timeout the event goes to the local spool, a circuit breaker stops later requests
from paying the timeout again, and a background thread replays the spool once Redis
answers again.

Modules: `extension` (FeedbackGuard), `state` (one app's Capture), `sources` (field
sources), `validate` (the checks against the app's routes), `request` (request
context), `responses` (422/503), `breaker`, `senders` (sync or buffered), `spool` and
`spool_retry`; the inbox write itself is feedbackguard/inbox_writer.py, shared with
the worker side.
"""

from __future__ import annotations

from feedbackguard.capture.breaker import CircuitBreaker
from feedbackguard.capture.extension import EXTENSION, ROUTES_KEY, FeedbackGuard
from feedbackguard.capture.sources import CaptureConfigError, FeedbackSpec, compile_source
from feedbackguard.capture.state import Capture, CaptureCounters
from feedbackguard.clientaddr import client_ip

__all__ = [
    "EXTENSION",
    "ROUTES_KEY",
    "Capture",
    "CaptureConfigError",
    "CaptureCounters",
    "CircuitBreaker",
    "FeedbackGuard",
    "FeedbackSpec",
    "client_ip",
    "compile_source",
]
