"""The admin endpoint over the audit log: entries newest first, filtered by actor,
action (or prefix*) and time."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pydantic

from feedbackguard import audit
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import Registry
from feedbackguard.web.admin.context import aware
from feedbackguard.web.context import runtime

api = Registry()

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


class AuditQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    actor: str | None = pydantic.Field(None, max_length=200)
    action: str | None = pydantic.Field(None, max_length=200, description="exact or prefix*")
    since: datetime | None = None
    until: datetime | None = None
    limit: int = pydantic.Field(100, ge=1, le=m.AUDIT_MAX)

    @pydantic.field_validator("since", "until", mode="before")
    @classmethod
    def _rfc3339_only(cls, value: object) -> object:
        """What the schema's `date-time` format allows, no more: pydantic would also
        take epoch numbers, and `datetime.fromisoformat` dates alone, week dates or
        times without an offset ("20000101" got a 200; schemathesis flagged it)."""
        if not isinstance(value, str):
            return value
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
        return datetime.fromisoformat(value.upper())


AUDIT_SCAN_MAX = 100_000
"""Newest audit entries examined per query at most."""


@api.endpoint("GET", "/v1/audit", role="viewer", out=m.AuditOut, query=AuditQuery)
def audit_log(query: AuditQuery) -> m.AuditOut:
    """Audit entries, newest first, filtered by actor, action (or prefix*) and time."""
    r = runtime().redis
    since = aware(query.since) if query.since else None
    until = aware(query.until) if query.until else None
    out: list[dict[str, Any]] = []
    for entry in audit.entries(r, AUDIT_SCAN_MAX):
        if query.actor is not None and entry.get("actor") != query.actor:
            continue
        act = str(entry.get("action", ""))
        if query.action is not None and not (
            act.startswith(query.action[:-1]) if query.action.endswith("*") else act == query.action
        ):
            continue
        at = datetime.fromisoformat(entry["at"])
        if until is not None and at >= until:
            continue
        if since is not None and at < since:
            break  # newest first: everything further is older
        out.append(entry)
        if len(out) >= query.limit:
            break
    return m.AuditOut(entries=out)
