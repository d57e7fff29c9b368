"""What capture reads from the request: the endpoint's fields and the request context
(client IP per `trusted_proxies`, see feedbackguard/clientaddr.py; device id, user
agent, `Idempotency-Key`)."""

from __future__ import annotations

from typing import Any

import flask

from feedbackguard.capture.body import json_body, parse_form
from feedbackguard.capture.sources import FeedbackSpec
from feedbackguard.clientaddr import client_ip
from feedbackguard.events import MAX_META_CHARS
from feedbackguard.settings import Settings

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT_HEADER = "User-Agent"
_ID_FIELDS = frozenset({"account_id", "item_id"})


def read_body(request: flask.Request, spec: FeedbackSpec, settings: Settings) -> Any:
    """The parsed JSON body when the spec reads JSON (else None); the form is parsed
    when the spec reads it. Raises `BodyTooLarge` / `BodyTooDeep` past the settings'
    bounds."""
    if spec.reads_form:
        parse_form(request, settings.max_body_bytes)
    if spec.reads_json:
        return json_body(request, settings.max_body_bytes, settings.max_json_depth)
    return None


def event_fields(
    request: flask.Request, spec: FeedbackSpec, settings: Settings, body: Any
) -> dict[str, Any]:
    """The event's fields as this request gives them, before validation: the spec's
    sources (integer ids as text; missing ones left out) and the request context.
    `body` is what `read_body` returned."""
    fields: dict[str, Any] = {}
    for name, get in spec.getters:
        value = get(request, body)
        if value is None:
            continue
        if name in _ID_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        fields[name] = value
    fields["ip"] = client_ip(request, settings.trusted_proxies)
    device = request.headers.get(settings.device_id_header) or request.cookies.get(
        settings.device_id_cookie
    )
    if device:
        fields["device_id"] = device[:MAX_META_CHARS]
    agent = request.headers.get(USER_AGENT_HEADER)
    if agent:
        fields["user_agent"] = agent[:MAX_META_CHARS]
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None:
        fields["event_id"] = key
    return fields
