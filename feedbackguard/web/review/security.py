"""CSRF tokens and the response headers every review page and API answer carries.

The CSRF token is a random value kept in the (signed) session; every form carries it
as a hidden field and the JavaScript sends it as `X-CSRF-Token`. Requests
authenticated by an API key need none (no ambient browser credential is involved).
"""

from __future__ import annotations

import hmac
import secrets

from flask import Response, request, session

SESSION_KEY = "fg_csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
TOKEN_BYTES = 32

# Attacker text is shown on these pages: no inline script or style at all, nothing
# loaded from elsewhere, no framing, forms only back to us.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session[SESSION_KEY] = token
    return token


def csrf_ok() -> bool:
    """Whether this request carries the session's CSRF token (form field or header)."""
    expected = session.get(SESSION_KEY)
    given = request.form.get(FORM_FIELD) or request.headers.get(HEADER) or ""
    return (
        isinstance(expected, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def rotate() -> None:
    """A new token (on login and logout: no token survives a change of user)."""
    session[SESSION_KEY] = secrets.token_urlsafe(TOKEN_BYTES)


def secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
