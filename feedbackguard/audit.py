"""The audit log: who changed what, when. A capped Redis stream, newest last."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from feedbackguard import keys

# Entries kept (approximate trim). At ~300 bytes an entry this bounds the log to ~300 MB.
AUDIT_MAXLEN = 1_000_000
SCAN_PAGE = 1000  # entries read per round trip by `latest`

_held: ContextVar[list[dict[str, Any]] | None] = ContextVar("feedbackguard_audit", default=None)


@contextmanager
def held_back() -> Iterator[list[dict[str, Any]]]:
    """Within the block (this thread or task only), entries are collected in the list
    it yields instead of written: what a dry run would have audited, without writing
    to the live log."""
    entries: list[dict[str, Any]] = []
    token = _held.set(entries)
    try:
        yield entries
    finally:
        _held.reset(token)


def record(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    actor: str,
    action: str,
    **detail: Any,
) -> None:
    """Append an entry. The log has a slot of its own on a Redis Cluster, so it cannot
    join another key's MULTI: callers write the entry on the client before their change
    (an entry for a change that then failed, never a change without an entry)."""
    entry = {"actor": actor, "action": action, "at": datetime.now(UTC).isoformat(), **detail}
    held = _held.get()
    if held is not None:
        held.append(entry)
        return
    r.xadd(keys.audit(), {b"a": orjson.dumps(entry)}, maxlen=AUDIT_MAXLEN, approximate=True)


def entries(r: redis.Redis[bytes], count: int = 100) -> list[dict[str, Any]]:
    """The newest `count` entries, newest first."""
    return [orjson.loads(fields[b"a"]) for _, fields in r.xrevrange(keys.audit(), count=count)]


def latest(r: redis.Redis[bytes], match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The newest entry `match` accepts, or None; reads the log newest first, a page at
    a time, until one matches."""
    end = "+"
    while True:
        page = r.xrevrange(keys.audit(), max=end, count=SCAN_PAGE)
        for _, fields in page:
            entry: dict[str, Any] = orjson.loads(fields[b"a"])
            if match(entry):
                return entry
        if len(page) < SCAN_PAGE:
            return None
        end = "(" + page[-1][0].decode()
