"""The answers capture gives instead of the view: 422 for invalid feedback, 413 for a
body past `max_body_bytes`, 503 while the inbox is full."""

from __future__ import annotations

import math

import flask
import orjson
import pydantic

from feedbackguard.events import ModelOutput, Payload

INVALID_STATUS = 422
TOO_LARGE_STATUS = 413
FULL_STATUS = 503
_NESTED = {"payload": Payload.model_fields, "model_output": ModelOutput.model_fields}
# Pydantic error types that only say "not this member of the union": when a field
# has a more specific error, that one is reported instead.
_UNION_NOISE = ("_type", "_parsing")


def invalid_response(exc: pydantic.ValidationError) -> flask.Response:
    """422 `{"error": "invalid_feedback", "fields": [{"field", "message"}]}`."""
    body = {"error": "invalid_feedback", "fields": invalid_fields(exc)}
    return flask.current_app.response_class(
        orjson.dumps(body), status=INVALID_STATUS, mimetype="application/json"
    )


def too_large_response(limit: int) -> flask.Response:
    """413 `{"error": "feedback_too_large", "limit_bytes", "message"}`."""
    body = {
        "error": "feedback_too_large",
        "limit_bytes": limit,
        "message": f"the request body is larger than max_body_bytes ({limit} bytes)",
    }
    return flask.current_app.response_class(
        orjson.dumps(body), status=TOO_LARGE_STATUS, mimetype="application/json"
    )


def too_deep_response(limit: int) -> flask.Response:
    """422 `{"error": "invalid_feedback", "fields": [{"field": "body", ...}]}` for JSON
    nested past `max_json_depth`."""
    message = f"JSON nested deeper than max_json_depth ({limit} levels)"
    body = {"error": "invalid_feedback", "fields": [{"field": "body", "message": message}]}
    return flask.current_app.response_class(
        orjson.dumps(body), status=INVALID_STATUS, mimetype="application/json"
    )


def full_response(retry_after_s: float) -> flask.Response:
    """503 `{"error": "feedback_backlog"}` with Retry-After: the workers are behind."""
    response = flask.current_app.response_class(
        orjson.dumps({"error": "feedback_backlog"}), status=FULL_STATUS, mimetype="application/json"
    )
    response.headers["Retry-After"] = str(math.ceil(retry_after_s))
    return response


def invalid_fields(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    """One entry per offending event field (nested ones as `payload.text`)."""
    by_field: dict[str, list[tuple[str, str]]] = {}
    for error in exc.errors(include_url=False):
        by_field.setdefault(_field_name(error["loc"]), []).append((error["type"], error["msg"]))
    out = []
    for name, errors in by_field.items():
        specific = [msg for kind, msg in errors if not kind.endswith(_UNION_NOISE)]
        messages = list(dict.fromkeys(specific or [msg for _, msg in errors]))
        out.append({"field": name, "message": "; ".join(messages)})
    return out


def _field_name(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "event"
    head = str(loc[0])
    nested = _NESTED.get(head)
    if nested is not None and len(loc) > 1 and isinstance(loc[1], str) and loc[1] in nested:
        return f"{head}.{loc[1]}"
    return head
