"""Admin endpoints for API keys (list, create, revoke) and for the caller's own
identity."""

from __future__ import annotations

from flask import g

from feedbackguard.web import auth
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import Registry
from feedbackguard.web.admin.context import actor
from feedbackguard.web.context import runtime

api = Registry()


@api.endpoint("GET", "/v1/keys", role="admin", out=m.KeysOut)
def list_keys() -> m.KeysOut:
    """API keys (never their secrets)."""
    return m.KeysOut(keys=[m.KeyInfo(**k) for k in auth.list_keys(runtime().redis)])


@api.endpoint("POST", "/v1/keys", role="admin", out=m.KeyCreated, body=m.KeyIn, status=201)
def create_key(body: m.KeyIn) -> m.KeyCreated:
    """A new API key; its secret is in this answer only."""
    key_id, secret = auth.add_key(runtime().redis, body.name, body.role, actor=actor())
    return m.KeyCreated(key_id=key_id, name=body.name, role=body.role, secret=secret)


@api.endpoint("POST", "/v1/keys/{key_id}/revoke", role="admin", out=m.RemovedOut)
def revoke_key(key_id: str) -> m.RemovedOut:
    """Revoke an API key."""
    return m.RemovedOut(removed=auth.revoke_key(runtime().redis, key_id, actor=actor()))


@api.endpoint("GET", "/v1/whoami", role="viewer", out=m.WhoAmI)
def whoami() -> m.WhoAmI:
    """The caller's name and role."""
    p: auth.Principal = g.principal
    return m.WhoAmI(name=p.name, role=p.role, via=p.via)
