"""What the event queue (`queue`) and the case index (`cases`) share around their Lua
scans (`review_scan.lua`, `case_scan.lua`): the page cursor a scan resumes from, and the
leases a claim takes (a sorted set id -> expiry in ms, a hash id -> moderator).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis


def encode_cursor(score: bytes, member: bytes) -> str:
    """The cursor after `member` of `score` (as the scan script returns them)."""
    return f"{score.decode()}|{member.decode()}"


def decode_cursor(cursor: str | None) -> tuple[str, str]:
    """The score and member a cursor resumes after ("", "" from the start).

    Raises ValueError for a cursor this module did not make."""
    if not cursor:
        return "", ""
    score, sep, member = cursor.partition("|")
    if not sep:
        raise ValueError("bad cursor")
    float(score)  # only a number reaches the script
    return score, member


def holders(r: redis.Redis[bytes], leases: str, names: str, ids: Sequence[str]) -> list[str | None]:
    """Who holds a live lease on each id (None: nobody), from the `leases` sorted set
    and the `names` hash."""
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    pipe.zmscore(leases, list(ids))
    pipe.hmget(names, list(ids))
    until, found = pipe.execute()
    now = time.time() * 1000
    return [
        name.decode() if name is not None and t is not None and t > now else None
        for t, name in zip(until, found, strict=True)
    ]


def drop(r: redis.Redis[bytes], leases: str, names: str, ids: Sequence[str]) -> None:
    """Take the leases on `ids` away (whoever holds them: the caller checked)."""
    pipe = r.pipeline(transaction=True)
    pipe.zrem(leases, *ids)
    pipe.hdel(names, *ids)
    pipe.execute()
