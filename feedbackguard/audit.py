"""The audit log: who changed what, when. A capped Redis stream, newest last."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from feedbackguard import keys

# Entries kept (approximate trim). At ~300 bytes an entry this bounds the log to ~300 MB.
AUDIT_MAXLEN = 1_000_000

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
    entry = {"actor": actor, "action": action, "at": datetime.now(UTC).isoformat(), **detail}
    held = _held.get()
    if held is not None:
        held.append(entry)
        return
    r.xadd(keys.audit(), {b"a": orjson.dumps(entry)}, maxlen=AUDIT_MAXLEN, approximate=True)


def entries(r: redis.Redis[bytes], count: int = 100) -> list[dict[str, Any]]:
    """The newest `count` entries, newest first."""
    return [orjson.loads(fields[b"a"]) for _, fields in r.xrevrange(keys.audit(), count=count)]
