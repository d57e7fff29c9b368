"""Redis key names. `{namespace}` is a hash tag: every key of a namespace is in one
Cluster slot, so each Lua script and pipeline touches a single slot."""

from __future__ import annotations

PREFIX = "fg"


def ns(namespace: str, *parts: str) -> str:
    return ":".join((PREFIX, "{" + namespace + "}", *parts))


def inbox(namespace: str) -> str:
    return ns(namespace, "inbox")


def namespaces() -> str:
    """Set of namespaces that have ever received feedback (so workers find their inboxes)."""
    return f"{PREFIX}:namespaces"
