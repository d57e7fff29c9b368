"""What every admin endpoint group reaches for: the caller's name for audit entries,
the policy store read without cache, and request times read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g

from feedbackguard.policy.store import PolicyStore
from feedbackguard.web import auth
from feedbackguard.web.context import runtime


def actor() -> str:
    """The authenticated caller as audit entries name it: `via:name`."""
    principal: auth.Principal = g.principal
    return f"{principal.via}:{principal.name}"


def policies() -> PolicyStore:
    """A fresh, uncached store: admins must read what they just wrote."""
    return PolicyStore(runtime().redis, cache_s=0)


def aware(t: datetime) -> datetime:
    """`t` with its offset, or as UTC when the request gave none."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
