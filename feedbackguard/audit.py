"""The audit log: who changed what, when. A capped Redis stream, newest last."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from feedbackguard import keys

# Entries kept (approximate trim). At ~300 bytes an entry this bounds the log to ~300 MB.
AUDIT_MAXLEN = 1_000_000
SCAN_PAGE = 1000  # entries read per round trip by `latest`


def record(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    actor: str,
    action: str,
    **detail: Any,
) -> None:
    entry = {"actor": actor, "action": action, "at": datetime.now(UTC).isoformat(), **detail}
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
