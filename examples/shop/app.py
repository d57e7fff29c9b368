"""The support-desk product: tickets, a classifier, and agents' corrections.

    POST /tickets                       {"text": ...}  -> the ticket, with the model's label
    GET  /tickets/<id>                  the ticket, its predicted and corrected label
    POST /tickets/<id>/feedback         {"label": ...} a user corrects the model (guarded)
    GET  /feedbackguard/counters        capture counters of this process

Users are identified by an `X-User` header (a stand-in for the product's session);
`X-Account-Created` (ISO date) tells when the account was created, as a real product
would know from its user table. Corrections are the retraining data an attacker
wants to poison, so the feedback endpoint is wrapped by FeedbackGuard: every
correction becomes a feedback event in Redis, with the model's output and the
ticket text, and is checked by the workers before it can reach retraining.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flask

from feedbackguard import FeedbackGuard

from .model import TicketClassifier, load_tickets

NAMESPACE = "tickets"
USER_HEADER = "X-User"
ACCOUNT_CREATED_HEADER = "X-Account-Created"
MAX_TICKET_CHARS = 5000


@dataclass
class Ticket:
    id: str
    text: str
    predicted: str
    confidence: float
    corrected: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Desk:
    """The product's own state: tickets in memory, seeded with the bundled ones."""

    def __init__(self, classifier: TicketClassifier) -> None:
        self.classifier = classifier
        self.tickets: dict[str, Ticket] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def open(self, text: str) -> Ticket:
        prediction = self.classifier.predict(text)
        with self._lock:
            ticket_id = f"t{next(self._ids)}"
            ticket = Ticket(ticket_id, text, prediction.label, prediction.confidence)
            self.tickets[ticket_id] = ticket
        return ticket


def create_app(settings_overrides: Mapping[str, Any] | None = None) -> flask.Flask:
    """The product app; `settings_overrides` are feedbackguard Settings fields."""
    app = flask.Flask(__name__)
    app.config.update(
        {f"FEEDBACKGUARD_{k.upper()}": v for k, v in (settings_overrides or {}).items()}
    )
    rows = load_tickets()
    desk = Desk(TicketClassifier(rows))
    for text, _ in rows:
        desk.open(text)
    app.extensions["shop.desk"] = desk
    # Reads FEEDBACKGUARD_* from app.config (and the environment); Redis is opened on the
    # first correction (the embedded server when FEEDBACKGUARD_REDIS_URL is unset).
    guard = FeedbackGuard(app)

    def ticket_or_none(ticket_id: str) -> Ticket | None:
        return desk.tickets.get(ticket_id)

    def known_ticket() -> str | None:
        """item_id source: unknown tickets are invalid feedback (422), not events."""
        ticket_id = (flask.request.view_args or {}).get("ticket_id", "")
        return ticket_id if ticket_or_none(ticket_id) else None

    def model_output() -> dict[str, Any] | None:
        ticket = ticket_or_none((flask.request.view_args or {}).get("ticket_id", ""))
        return {"label": ticket.predicted, "confidence": ticket.confidence} if ticket else None

    def payload() -> dict[str, Any] | None:
        ticket = ticket_or_none((flask.request.view_args or {}).get("ticket_id", ""))
        return {"text": ticket.text} if ticket else None

    @app.before_request
    def identify_user() -> Any:
        flask.g.user_id = flask.request.headers.get(USER_HEADER)
        flask.g.account_created_at = flask.request.headers.get(ACCOUNT_CREATED_HEADER)
        if flask.request.method == "POST" and not flask.g.user_id:
            return {"error": "login required"}, 401
        return None

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "labels": desk.classifier.labels}

    @app.post("/tickets")
    def open_ticket() -> Any:
        body = flask.request.get_json(silent=True) or {}
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TICKET_CHARS:
            return {"error": "text is required (at most 5000 characters)"}, 400
        return desk.open(text).as_dict(), 201

    @app.get("/tickets/<ticket_id>")
    def show_ticket(ticket_id: str) -> Any:
        ticket = ticket_or_none(ticket_id)
        if ticket is None:
            return {"error": "no such ticket"}, 404
        return ticket.as_dict()

    @app.post("/tickets/<ticket_id>/feedback")
    @guard.feedback(
        kind="correction",
        namespace=NAMESPACE,
        account="g:user_id",
        account_created_at="g:account_created_at",
        item=known_ticket,
        value="json:label",
        model_output=model_output,
        payload=payload,
    )
    def correct_ticket(ticket_id: str) -> Any:
        ticket = ticket_or_none(ticket_id)
        if ticket is None:
            return {"error": "no such ticket"}, 404
        label = (flask.request.get_json(silent=True) or {}).get("label")
        if label not in desk.classifier.labels:
            return {"error": f"label must be one of {desk.classifier.labels}"}, 400
        ticket.corrected = label
        return {"ticket": ticket.id, "label": label, "status": "thanks"}

    @app.get("/feedbackguard/counters")
    def counters() -> dict[str, int]:
        return guard.counters.as_dict()

    return app
