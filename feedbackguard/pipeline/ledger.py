"""Per-event records in Redis: the event, its decision trail, and the sets that index
them by status (pending by due time, review by arrival) plus a namespace's counters
and event-time clock.

A record is the JSON `{"event": {...}, "trail": [decision, ...]}`; its last decision
is the event's current status. Records of final outcomes expire after the policy's
`outcome_ttl_s` (the store keeps admitted items for good).

Records are read back two ways: `load` validates them into models (what moderation,
review and analysis work with); `load_raw` only parses the JSON, for the release,
which moves records feedbackguard wrote itself into the store without looking inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from feedbackguard import keys, scripts
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent

_CLOCK_MEMBER = b"t"
# A record's JSON around its two parts, as `encode_record` writes it.
_EVENT_OPEN = b'{"event":'
_TRAIL_OPEN = b',"trail":'
_RECORD_CLOSE = b"}"
# The keys of a decision's JSON form, in the order `Decision.model_dump` writes them.
_DECISION_KEYS = tuple(Decision.model_fields)
_STATUS = b'"status":"'


@dataclass(frozen=True, slots=True)
class Record:
    event: FeedbackEvent
    trail: tuple[Decision, ...]

    @property
    def decision(self) -> Decision:
        return self.trail[-1]

    def to_json(self) -> bytes:
        return encode_record(self.event.to_json(), [d.model_dump(mode="json") for d in self.trail])


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as plain JSON, not validated (see `split_record`).

    `event_json` is the event's JSON exactly as stored: `FeedbackEvent.to_json()`, as
    every inbox writer produces it and ingest validated it (left unparsed: most
    readers only look at the trail); `trail` holds the decisions in their
    `Decision.model_dump(mode="json")` form. Datetimes in them are ISO-8601 strings.
    """

    event_json: bytes
    trail: list[dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.trail[-1]["status"])

    def to_json(self) -> bytes:
        return encode_record(self.event_json, self.trail)

    def validated(self) -> Record:
        """The record as validated models."""
        return Record(
            event=FeedbackEvent.model_validate_json(self.event_json),
            trail=tuple(Decision.model_validate(d) for d in self.trail),
        )

    def then(self, decision: dict[str, Any]) -> RawRecord:
        """This record with `decision` (JSON form) appended to its trail."""
        return RawRecord(self.event_json, [*self.trail, decision])


def encode_record(event_json: bytes, trail: Sequence[dict[str, Any]]) -> bytes:
    """Splice the event's JSON in as it is: no re-serialisation on the hot path."""
    return _EVENT_OPEN + event_json + _TRAIL_OPEN + orjson.dumps(trail) + _RECORD_CLOSE


def decode_record(raw: bytes) -> Record:
    """A record as validated models."""
    return split_record(raw).validated()


def split_record(raw: bytes) -> RawRecord:
    """A record's event JSON (as it is) and trail (parsed, not validated): a quarter
    of the cost of `decode_record`'s validation (docs/benchmarks.md).

    The trail's JSON never holds the bytes `,"trail":` (no decision has a key "trail",
    and quotes inside strings are escaped), so its last occurrence is where
    `encode_record` spliced the trail in. A trail whose decisions have other keys
    than today's `Decision` (written by another version) is passed through the model
    once, so every trail comes back in today's JSON form.
    """
    cut = raw.rfind(_TRAIL_OPEN)
    if cut < 0 or not raw.startswith(_EVENT_OPEN) or not raw.endswith(_RECORD_CLOSE):
        raise ValueError("not a feedbackguard record")
    event_json = raw[len(_EVENT_OPEN) : cut]
    trail = orjson.loads(raw[cut + len(_TRAIL_OPEN) : -len(_RECORD_CLOSE)])
    if any(tuple(decision) != _DECISION_KEYS for decision in trail):
        trail = [Decision.model_validate(d).model_dump(mode="json") for d in trail]
    return RawRecord(event_json=event_json, trail=trail)


def last_status(raw: bytes) -> str:
    """The status of a record's last decision, read without parsing the record (the
    consistency analysis reads the status of every event in its window at each run;
    docs/benchmarks.md).

    The bytes `"status":"` occur only as a decision's key: no event field is called
    status, and quotes inside strings are escaped; the last decision is the last one
    written (`encode_record`).
    """
    at = raw.rfind(_STATUS)
    if at < 0:
        raise ValueError("not a feedbackguard record")
    start = at + len(_STATUS)
    return raw[start : raw.index(b'"', start)].decode()


def last_reasons(raw: bytes) -> dict[str, float]:
    """Code -> score of the reasons of a record's last decision, read without
    validating the record (the consistency analysis reads those of every waiting
    event of its window at each run)."""
    cut = raw.rfind(_TRAIL_OPEN)
    if cut < 0 or not raw.endswith(_RECORD_CLOSE):
        raise ValueError("not a feedbackguard record")
    trail = orjson.loads(raw[cut + len(_TRAIL_OPEN) : -len(_RECORD_CLOSE)])
    return {str(r["code"]): float(r["score"]) for r in trail[-1].get("reasons", ())}


def write_records(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    records: Sequence[tuple[str, bytes]],
    ttl_s: float | None,
) -> None:
    """Queue on `pipe` (a MULTI) the (event_id, record) writes that expire after
    `ttl_s`, or never (None: the event still waits for a final status).

    One MSET for all of them, then one script call setting their expiry: a SET ... EX
    per record inside a script cost Redis 3-4 times more (7-10 us against 2.6 us per
    700-byte record, 2,000 records; docs/benchmarks.md), a MULTI of SETs cost the
    worker several times more in redis-py's packing."""
    if not records:
        return
    names = [keys.record(namespace, event_id) for event_id, _ in records]
    flat = [part for name, (_, record) in zip(names, records, strict=True)
            for part in (name, record)]  # fmt: skip
    # By name: a cluster pipeline refuses `mset()` though every key is in one slot.
    pipe.execute_command("MSET", *flat)
    if ttl_s is not None:
        scripts.run(pipe, "expire_keys", names, [max(1, int(ttl_s))])


def missing(
    r: redis.Redis[bytes],
    namespace: str,
    event_ids: Sequence[str],
    watch: redis.client.Pipeline[bytes] | None = None,
) -> list[bool]:
    """For each event id, True when no record exists yet (not decided before).

    With `watch`, the records are first WATCHed on that pipeline: its MULTI then fails
    (WatchError) when another writer decides any of these events before it executes,
    so an answer acted on in that MULTI is still true when it is written.
    One EXISTS over every key answers the usual case, none exists, at a third of the
    script's cost per key (0.5 against 1.4 us); only when some exist does the script
    say which."""
    if not event_ids:
        return []
    names = [keys.record(namespace, e) for e in event_ids]
    if watch is not None:
        watch.watch(*names)
    if not r.exists(*names):
        return [True] * len(names)
    return [bool(f) for f in scripts.run(r, "missing", names)]


def load(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[Record | None]:
    if not event_ids:
        return []
    raws = r.mget([keys.record(namespace, e) for e in event_ids])
    return [decode_record(raw) if raw else None for raw in raws]


def load_raw(
    r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]
) -> list[RawRecord | None]:
    """`load` without validation, for records moved as they are (see `RawRecord`)."""
    if not event_ids:
        return []
    raws = r.mget([keys.record(namespace, e) for e in event_ids])
    return [split_record(raw) if raw else None for raw in raws]


def find(r: redis.Redis[bytes], event_id: str) -> Record | None:
    """The record of an event in any namespace."""
    for namespace in sorted(m.decode() for m in r.smembers(keys.namespaces())):
        raw = r.get(keys.record(namespace, event_id))
        if raw:
            return decode_record(raw)
    return None


def clock(r: redis.Redis[bytes], namespace: str) -> float:
    """The namespace's event time: the latest `received_at` seen (epoch seconds)."""
    value = r.zscore(keys.clock(namespace), _CLOCK_MEMBER)
    return float(value) if value is not None else 0.0


def advance_clock(pipe: redis.client.Pipeline[bytes], namespace: str, t: float) -> None:
    """Move the event clock forward to `t` (never back)."""
    pipe.zadd(keys.clock(namespace), {_CLOCK_MEMBER: t}, gt=True)


def analysed(r: redis.Redis[bytes], namespace: str) -> float:
    """Event time up to which the analysers have run (0 when they never have)."""
    value = r.get(keys.analysed(namespace))
    return float(value) if value is not None else 0.0


def stats(r: redis.Redis[bytes], namespace: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(keys.stats(namespace)).items()}


def claim_due(r: redis.Redis[bytes], namespace: str, now: float, limit: int) -> list[str]:
    """Atomically take up to `limit` pending ids whose probation ended at `now`."""
    ids = scripts.run(
        r, "claim_due", [keys.pending(namespace), keys.releasing(namespace)], [now, limit]
    )
    return [i.decode() for i in ids]
