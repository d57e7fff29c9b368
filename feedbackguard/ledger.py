"""Per-event records in Redis: the event, its decision trail, and the sets that index
them by status (pending by due time, review by arrival) plus a namespace's counters
and event-time clock.

A record is the JSON `{"event": {...}, "trail": [decision, ...]}`; its last decision
is the event's current status. Records of final outcomes expire after the policy's
`outcome_ttl_s` (the store keeps admitted items for good).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from feedbackguard import keys, scripts
from feedbackguard.decide import Decision
from feedbackguard.events import FeedbackEvent

_CLOCK_MEMBER = b"t"


def record_key(namespace: str, event_id: str) -> str:
    return keys.ns(namespace, "ev", event_id)


def pending_key(namespace: str) -> str:
    return keys.ns(namespace, "pending")


def releasing_key(namespace: str) -> str:
    return keys.ns(namespace, "releasing")


def review_key(namespace: str) -> str:
    return keys.ns(namespace, "review")


def stats_key(namespace: str) -> str:
    return keys.ns(namespace, "stats")


def clock_key(namespace: str) -> str:
    return keys.ns(namespace, "clock")


def analysed_key(namespace: str) -> str:
    return keys.ns(namespace, "analysed")


def lock_key(namespace: str) -> str:
    """Held while a status changes after ingest (release, re-decision, moderation)."""
    return keys.ns(namespace, "status-lock")


@dataclass(frozen=True, slots=True)
class Record:
    event: FeedbackEvent
    trail: tuple[Decision, ...]

    @property
    def decision(self) -> Decision:
        return self.trail[-1]

    def to_json(self) -> bytes:
        return encode_record(self.event.to_json(), [d.model_dump(mode="json") for d in self.trail])


def encode_record(event_json: bytes, trail: Sequence[dict[str, Any]]) -> bytes:
    """Splice the event's JSON in as it is: no re-serialisation on the hot path."""
    return b'{"event":' + event_json + b',"trail":' + orjson.dumps(trail) + b"}"


def decode_record(raw: bytes) -> Record:
    data = orjson.loads(raw)
    return Record(
        event=FeedbackEvent.model_validate(data["event"]),
        trail=tuple(Decision.model_validate(d) for d in data["trail"]),
    )


def write_records(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    records: Sequence[tuple[str, bytes]],
    ttl_s: float | None,
) -> None:
    """Queue on `pipe` the (event_id, record) writes that expire after `ttl_s`, or
    never (None: the event still waits for a final status)."""
    if records:
        scripts.run(
            pipe,
            "set_records",
            [record_key(namespace, event_id) for event_id, _ in records],
            [max(1, int(ttl_s)) if ttl_s is not None else 0, *(record for _, record in records)],
        )


def missing(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[bool]:
    """For each event id, True when no record exists yet (not decided before)."""
    if not event_ids:
        return []
    flags = scripts.run(r, "missing", [record_key(namespace, e) for e in event_ids])
    return [bool(f) for f in flags]


def load(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[Record | None]:
    if not event_ids:
        return []
    raws = r.mget([record_key(namespace, e) for e in event_ids])
    return [decode_record(raw) if raw else None for raw in raws]


def find(r: redis.Redis[bytes], event_id: str) -> Record | None:
    """The record of an event in any namespace."""
    for namespace in sorted(m.decode() for m in r.smembers(keys.namespaces())):
        raw = r.get(record_key(namespace, event_id))
        if raw:
            return decode_record(raw)
    return None


def clock(r: redis.Redis[bytes], namespace: str) -> float:
    """The namespace's event time: the latest `received_at` seen (epoch seconds)."""
    value = r.zscore(clock_key(namespace), _CLOCK_MEMBER)
    return float(value) if value is not None else 0.0


def advance_clock(pipe: redis.client.Pipeline[bytes], namespace: str, t: float) -> None:
    """Move the event clock forward to `t` (never back)."""
    pipe.zadd(clock_key(namespace), {_CLOCK_MEMBER: t}, gt=True)


def analysed(r: redis.Redis[bytes], namespace: str) -> float:
    """Event time up to which the analysers have run (0 when they never have)."""
    value = r.get(analysed_key(namespace))
    return float(value) if value is not None else 0.0


def stats(r: redis.Redis[bytes], namespace: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(stats_key(namespace)).items()}


def claim_due(r: redis.Redis[bytes], namespace: str, now: float, limit: int) -> list[str]:
    """Atomically take up to `limit` pending ids whose probation ended at `now`."""
    ids = scripts.run(
        r, "claim_due", [pending_key(namespace), releasing_key(namespace)], [now, limit]
    )
    return [i.decode() for i in ids]
