"""The inbox stream of a namespace, read in batches through one consumer group.

Events enter it through feedbackguard/inbox_writer.py (held events come back through
lua/held_requeue.lua). Entries carry the field `e`, the event's JSON, and `u` = "1"
when capture is unsure whether an earlier copy already landed (a write that failed
after it was sent, then spooled and replayed): the pipeline only trusts such an
entry's dedupe while the first copy's record can still exist. A worker that dies
holding entries loses nothing: entries idle longer than `claim_idle_ms` are reclaimed
by the next reader (XAUTOCLAIM) and processed again; downstream writes are idempotent
on event_id. A worker only stalled that long must not decide its batch as well:
every reclaim moves the namespace's reclaim counter (`reclaims`), which tells a
reader whether another may hold entries of its batch (`Pipeline.ingest_batch`).
"""

from __future__ import annotations

from typing import NamedTuple

import redis

from feedbackguard import keys
from feedbackguard.inbox_writer import FIELD, UNSURE

__all__ = ["FIELD", "UNSURE", "Entry", "backlog", "ensure_group", "read_batch", "reclaims"]


class Entry(NamedTuple):
    id: bytes
    raw: bytes
    """The event's JSON."""
    unsure: bool = False
    """An earlier copy of this event may have reached the inbox (see module docstring)."""


def ensure_group(r: redis.Redis[bytes], namespace: str) -> None:
    try:
        r.xgroup_create(keys.inbox(namespace), keys.INBOX_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read_batch(
    r: redis.Redis[bytes],
    namespace: str,
    consumer: str,
    count: int,
    block_ms: int | None,
    claim_idle_ms: int,
) -> list[Entry]:
    """Entries to process: first those abandoned by dead consumers, then new ones."""
    stream = keys.inbox(namespace)
    claimed = _reclaim(r, namespace, consumer, claim_idle_ms, count)
    if claimed:
        return claimed
    read = r.xreadgroup(keys.INBOX_GROUP, consumer, {stream: ">"}, count=count, block=block_ms)
    if not read:
        return []
    return _entries(read[0][1])


def _reclaim(
    r: redis.Redis[bytes], namespace: str, consumer: str, min_idle_ms: int, count: int
) -> list[Entry]:
    """Entries delivered to any consumer and idle longer than `min_idle_ms`, now this
    consumer's; the reclaim counter moves after the claim (see `reclaims`).

    Claimed by id (JUSTID), then read, because of an entry deleted while pending:
    Redis 7 drops it from the pending list, Redis 6.2 keeps it there and answers nil
    in place of the entry, without its id. Only its id tells it apart, so it is
    acknowledged here; otherwise it would be claimed again at every read and counted
    in the backlog for ever.
    """
    stream = keys.inbox(namespace)
    ids = r.xautoclaim(
        stream, keys.INBOX_GROUP, consumer, min_idle_ms, "0-0", count=count, justid=True
    )
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    pipe.incr(keys.reclaims(namespace))
    for entry_id in ids:
        pipe.xrange(stream, entry_id, entry_id)
    found = pipe.execute()[1:]
    gone = [entry_id for entry_id, rows in zip(ids, found, strict=True) if not rows]
    if gone:
        r.xack(stream, keys.INBOX_GROUP, *gone)
    return _entries([rows[0] for rows in found if rows])


def _entries(raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    return [Entry(entry_id, fields.get(FIELD, b""), UNSURE in fields) for entry_id, fields in raw]


def reclaims(r: redis.Redis[bytes], namespace: str) -> int:
    """The namespace's reclaim counter. Entries leave a reader's hands only through a
    reclaim (`read_batch`), which moves it after claiming them: a reader that finds
    it where it was before it read its batch still holds every entry of the batch."""
    value = r.get(keys.reclaims(namespace))
    return int(value) if value is not None else 0


def backlog(r: redis.Redis[bytes], namespace: str) -> int:
    """Entries not yet acknowledged: undelivered plus delivered-but-pending."""
    stream = keys.inbox(namespace)
    try:
        groups = r.xinfo_groups(stream)
    except redis.ResponseError:
        return 0
    for group in groups:
        if group["name"] in (keys.INBOX_GROUP, keys.INBOX_GROUP.encode()):
            lag = group.get("lag")
            pending = int(group.get("pending", 0))
            if lag is None:  # Redis < 7 has no lag: count what is after last-delivered-id
                lag = len(r.xrange(stream, _after(group["last-delivered-id"]), "+", count=1))
            return int(lag) + pending
    return int(r.xlen(stream))


def _after(entry_id: bytes | str) -> str:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return "(" + text
