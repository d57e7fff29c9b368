"""Rows as the store writes and signs them, and back.

Each kind of row has one canonical byte form (`signing.canonical`, under its own
domain tag) that its HMAC signature covers. Row ids are not part of a row's signature
(they are assigned by the database during the insert); a version's set digest
(`member_hash`, summed) covers them instead. Rows appended after the latest version
are covered only by their own signatures until the next version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.store import signing
from feedbackguard.store.errors import NotAdmittedError
from feedbackguard.store.models import StoredItem, Version

# Domain tags of the signed records (see feedbackguard.store.signing).
ITEM_DOMAIN = "fg.store.item.v1"
TOMBSTONE_DOMAIN = "fg.store.tombstone.v1"
VERSION_DOMAIN = "fg.store.version.v1"
MEMBER_DOMAIN = b"fg.store.member.v1:"

DIGEST_MODULUS = 1 << 256  # set digests are sums of keyed hashes modulo this
EMPTY_MEMBERS = f"{0:064x}"

Row = Mapping[Any, Any]  # a result row mapping, or a row about to be inserted

_TRAIL = TypeAdapter(tuple[Decision, ...])


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted event in the form the store writes it: the columns it is found by,
    and the event and its decision trail as JSON (`admission`, `admission_from_json`)."""

    event_id: str
    namespace: str
    account_id: str
    item_id: str
    kind: str
    received_at: datetime
    decided_by: str
    event: str
    decisions: str


def admission(event: FeedbackEvent, trail: Sequence[Decision]) -> Admission:
    """An event and its decision trail, which must end in `admitted`, as stored."""
    return admission_from_json(event.to_json(), [d.model_dump(mode="json") for d in trail])


def admission_from_json(event_json: bytes, trail: Sequence[Mapping[str, Any]]) -> Admission:
    """An event and its decision trail (ending in `admitted`) in their JSON forms, as
    stored: what release moves from a Redis record (`ledger.RawRecord`) without building
    models, and what `admission` gives for models.

    `event_json` is `FeedbackEvent.to_json()` and goes in as it is; the trail's dicts
    (`Decision.model_dump(mode="json")`) are written with orjson, at less than half the
    cost of serialising models (docs/benchmarks.md).
    """
    event = orjson.loads(event_json)
    event_id = event["event_id"]
    _check_admissible(event_id, [(d["event_id"], d["status"]) for d in trail])
    return Admission(
        event_id=event_id,
        namespace=event["namespace"],
        account_id=event["account_id"],
        item_id=event["item_id"],
        kind=event["kind"],
        received_at=aware(datetime.fromisoformat(event["received_at"])),
        decided_by=trail[-1]["decided_by"],
        event=event_json.decode(),
        decisions=orjson.dumps(trail).decode(),
    )


def _check_admissible(event_id: str, trail: Sequence[tuple[str, str]]) -> None:
    """docs/architecture.md invariant 2: only admitted or moderator-approved items
    reach the store. `trail` holds each decision's (event_id, status)."""
    if not trail:
        raise NotAdmittedError(f"event {event_id!r} has an empty decision trail")
    status = trail[-1][1]
    if status != "admitted":
        raise NotAdmittedError(f"event {event_id!r}: last decision is {status!r}, not admitted")
    if any(owner != event_id for owner, _ in trail):
        raise NotAdmittedError(f"event {event_id!r}: trail holds another event's decision")


def item_row(
    key: bytes, event: FeedbackEvent, trail: Sequence[Decision], admitted_at: datetime
) -> dict[str, Any]:
    """The signed row for one admitted event (without its id, which the database assigns)."""
    return signed_rows(key, [admission(event, trail)], admitted_at)[0]


def signed_rows(
    key: bytes, batch: Sequence[Admission], admitted_at: datetime
) -> list[dict[str, Any]]:
    """The signed rows of admissions made at `admitted_at` (without their ids, which
    the database assigns). The admission time is put in canonical form once for all."""
    admitted_iso = signing.utc_iso(admitted_at)
    rows: list[dict[str, Any]] = []
    for item in batch:
        row: dict[str, Any] = {
            "event_id": item.event_id,
            "namespace": item.namespace,
            "account_id": item.account_id,
            "item_id": item.item_id,
            "kind": item.kind,
            "received_at": item.received_at,
            "admitted_at": admitted_at,
            "decided_by": item.decided_by,
            "event": item.event,
            "decisions": item.decisions,
        }
        row["signature"] = signing.sign(key, _item_message(row, admitted_iso))
        rows.append(row)
    return rows


def item_message(row: Row) -> bytes:
    """Canonical bytes of an item row's content."""
    return _item_message(row, signing.utc_iso(row["admitted_at"]))


def _item_message(row: Row, admitted_iso: str) -> bytes:
    """`item_message`, given the row's `admitted_at` already in canonical form."""
    return signing.canonical(
        ITEM_DOMAIN,
        row["event_id"],
        row["namespace"],
        row["account_id"],
        row["item_id"],
        row["kind"],
        signing.utc_iso(row["received_at"]),
        admitted_iso,
        row["decided_by"],
        row["event"],
        row["decisions"],
    )


def tombstone_message(row: Row) -> bytes:
    """Canonical bytes of a tombstone's content (its version binds it to one version)."""
    return signing.canonical(
        TOMBSTONE_DOMAIN,
        row["event_id"],
        row["action"],
        row["version"],
        row["reason"],
        row["actor"],
        signing.utc_iso(row["created_at"]),
    )


def version_message(row: Row) -> bytes:
    """Canonical bytes of a version's content."""
    return signing.canonical(
        VERSION_DOMAIN,
        row["version"],
        signing.utc_iso(row["created_at"]),
        row["watermark"],
        row["rows"],
        row["quarantined"],
        row["tombstones"],
        row["changed"],
        row["members"],
        row["note"],
        row["actor"],
    )


def member_hash(key: bytes, event_id: str) -> int:
    """One event id's keyed contribution to a version's set digest."""
    digest = signing.sign(key, MEMBER_DOMAIN + event_id.encode("utf-8", "surrogatepass"))
    return int(digest, 16)


def parse_item(row: Row, quarantined: bool = False) -> StoredItem:
    """A stored row back as its event and decision trail."""
    return StoredItem(
        seq=row["id"],
        event=FeedbackEvent.model_validate_json(row["event"]),
        decisions=_TRAIL.validate_json(row["decisions"]),
        admitted_at=aware(row["admitted_at"]),
        quarantined=quarantined,
    )


def parse_version(row: Row) -> Version:
    """A stored version row back as a `Version`."""
    return Version(
        version=row["version"],
        created_at=aware(row["created_at"]),
        watermark=row["watermark"],
        rows=row["rows"],
        live=row["rows"] - row["quarantined"],
        quarantined=row["quarantined"],
        tombstones=row["tombstones"],
        changed=row["changed"],
        note=row["note"],
        actor=row["actor"],
    )


def aware(value: datetime) -> datetime:
    """A datetime read back from the database, in UTC (SQLite hands them back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
