"""Authorisation matrix: every admin and review API endpoint x every role x no key.

Below the endpoint's role the answer is 403, without a key 401, at or above it anything
but 401/403 (a 4xx for the placeholder body is fine: access was granted first).
"""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

import feedbackguard.web.admin as admin_api
from feedbackguard.web import auth

CALLERS: tuple[str | None, ...] = (None, *auth.ROLES)
# Review API (under settings.review_prefix): method, path, role needed.
REVIEW = (
    ("GET", "/review/api/items", "viewer"),
    ("GET", "/review/api/items/x", "viewer"),
    ("POST", "/review/api/claim", "moderator"),
    ("POST", "/review/api/release", "moderator"),
    ("POST", "/review/api/decide", "moderator"),
    ("POST", "/review/api/bulk", "moderator"),
    ("POST", "/review/api/undo", "moderator"),
)
ADMIN = tuple(
    (ep.method, "/api" + ep.path.replace("{kind}", "deny").replace("{", "").replace("}", ""),
     ep.role)
    for ep in admin_api.api.endpoints
    if ep.role is not None
)  # fmt: skip


@pytest.fixture
def keys(r: redis.Redis[bytes]) -> dict[str, str]:
    return {role: auth.add_key(r, f"matrix-{role}", role)[1] for role in auth.ROLES}


def test_matrix_covers_every_admin_endpoint() -> None:
    assert len(ADMIN) == sum(ep.role is not None for ep in admin_api.api.endpoints) > 20


@pytest.mark.parametrize(("method", "path", "needed"), ADMIN + REVIEW)
@pytest.mark.parametrize("caller", CALLERS)
def test_endpoint_answers_by_role(
    client: FlaskClient,
    keys: dict[str, str],
    method: str,
    path: str,
    needed: auth.Role,
    caller: str | None,
) -> None:
    headers = {"X-API-Key": keys[caller]} if caller else {}
    body = {} if method != "GET" else None
    status = client.open(path, method=method, headers=headers, json=body).status_code
    if caller is None:
        assert status == 401
    elif auth.RANK[caller] < auth.RANK[needed]:
        assert status == 403
    else:
        assert status not in (401, 403), status
