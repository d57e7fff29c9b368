"""Request arguments the event and case JSON endpoints share: the argument types with
their limits, the namespace of a read, and a moderator action's body.

One place for them, so an event endpoint and its case twin cannot drift apart in what
they accept.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from flask import g, request
from pydantic import BaseModel, Field

from feedbackguard.decisions import NOTE_MAX
from feedbackguard.web.auth import Principal
from feedbackguard.web.review import security

NAMESPACE_MAX = 200
IDS_MAX = 10_000

Namespace = Annotated[str, Field(min_length=1, max_length=NAMESPACE_MAX)]
Reason = Annotated[str | None, Field(max_length=200)]
Account = Annotated[str | None, Field(max_length=500)]
Risk = Annotated[float, Field(ge=0.0, le=1.0)]
Cursor = Annotated[str | None, Field(max_length=1000)]
Limit = Annotated[int, Field(ge=1, le=1000)]
Note = Annotated[str, Field(max_length=NOTE_MAX)]

M = TypeVar("M", bound=BaseModel)


class CsrfRefused(Exception):
    """A session caller's action came without the right CSRF token (answered 403)."""


def principal() -> Principal:
    """The caller `require_role` let in."""
    found: Principal = g.principal
    return found


def query_namespace() -> str:
    """The namespace a read names in its query (`default` when it names none)."""
    return request.args.get("namespace", "default")[:NAMESPACE_MAX]


def action_body(model: type[M]) -> M:
    """A moderator action's JSON body, once its CSRF token is checked: a caller logged in
    through the UI's session must send it; API-key callers need none.

    Raises CsrfRefused, or pydantic.ValidationError for a body `model` refuses.
    """
    if principal().via == "session" and not security.csrf_ok():
        raise CsrfRefused
    body: Any = request.get_json(silent=True) or {}
    return model.model_validate(body)
