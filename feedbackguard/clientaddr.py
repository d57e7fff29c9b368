"""Who the client is behind `trusted_proxies` reverse proxies: one rule for capture
(the event's IP) and the web app (the failed-authentication limiter)."""

from __future__ import annotations

from werkzeug.wrappers import Request

from feedbackguard.events import MAX_META_CHARS

FORWARDED_FOR_HEADER = "X-Forwarded-For"


def client_ip(request: Request, trusted_proxies: int) -> str | None:
    """The client address. With N trusted proxies, each appends the address it saw
    to X-Forwarded-For, so the client is the Nth entry from the right: entries left
    of it were written by the client and prove nothing. Without trusted proxies (or
    with fewer entries than proxies, a misconfiguration) the socket peer is used."""
    if trusted_proxies > 0:
        header = ",".join(request.headers.getlist(FORWARDED_FOR_HEADER))
        hops = [hop.strip() for hop in header.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies][:MAX_META_CHARS]
    return request.remote_addr
