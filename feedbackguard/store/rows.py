"""Entries as the store writes and signs them, and back.

Each kind of entry (row, tombstone, version) has one canonical byte form under its own
domain tag (`signing.canonical`), which includes its id (or version number). Its
signature is a link of the store's hash chain (`link`): an HMAC over the entry's
position on the chain, the previous entry's signature and that canonical form. So a
signature covers the entry, where it stands and, through the previous signature,
everything written before it.
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
ITEM_DOMAIN = "fg.store.item.v2"
TOMBSTONE_DOMAIN = "fg.store.tombstone.v2"
VERSION_DOMAIN = "fg.store.version.v2"
LINK_DOMAIN = "fg.store.link.v2"
GENESIS = "0" * 64  # the "previous signature" of the first entry

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


@dataclass(frozen=True, slots=True)
class Head:
    """The chain's head: the position of its newest entry and that entry's signature
    (position 0 and `GENESIS` for an empty store)."""

    position: int = 0
    digest: str = GENESIS

    def then(self, key: bytes, message: bytes) -> Head:
        """The head after appending the entry whose canonical form is `message`."""
        position = self.position + 1
        return Head(position, link(key, position, self.digest, message))


def link(key: bytes, position: int, previous: str, message: bytes) -> str:
    """The signature of the entry at `position` whose predecessor's signature is
    `previous`: an HMAC over both and the entry's canonical form."""
    return signing.sign(key, link_message(position, previous, message))


def link_message(position: int, previous: str, message: bytes) -> bytes:
    """What the signature of a chain entry covers (`link`)."""
    return signing.canonical(LINK_DOMAIN, position, previous) + message


def item_row(
    key: bytes,
    event: FeedbackEvent,
    trail: Sequence[Decision],
    admitted_at: datetime,
    *,
    first_id: int = 1,
    head: Head | None = None,
) -> dict[str, Any]:
    """The signed row for one admitted event, as the entry after `head` (default: the
    first entry of an empty store)."""
    rows, _ = signed_rows(
        key, [admission(event, trail)], admitted_at, first_id=first_id, head=head or Head()
    )
    return rows[0]


def signed_rows(
    key: bytes,
    batch: Sequence[Admission],
    admitted_at: datetime,
    *,
    first_id: int,
    head: Head,
) -> tuple[list[dict[str, Any]], Head]:
    """The signed rows of admissions made at `admitted_at`, with ids from `first_id`,
    chained after `head`; and the chain's head after them. The admission time is put
    in canonical form once for all."""
    admitted_iso = signing.utc_iso(admitted_at)
    rows: list[dict[str, Any]] = []
    for offset, item in enumerate(batch):
        row: dict[str, Any] = {
            "id": first_id + offset,
            "namespace": item.namespace,
            "event_id": item.event_id,
            "account_id": item.account_id,
            "item_id": item.item_id,
            "kind": item.kind,
            "received_at": item.received_at,
            "admitted_at": admitted_at,
            "decided_by": item.decided_by,
            "event": item.event,
            "decisions": item.decisions,
        }
        head = head.then(key, _item_message(row, admitted_iso))
        row["position"], row["signature"] = head.position, head.digest
        rows.append(row)
    return rows, head


def item_message(row: Row) -> bytes:
    """Canonical bytes of an item row's content."""
    return _item_message(row, signing.utc_iso(row["admitted_at"]))


def _item_message(row: Row, admitted_iso: str) -> bytes:
    """`item_message`, given the row's `admitted_at` already in canonical form."""
    return signing.canonical(
        ITEM_DOMAIN,
        row["id"],
        row["namespace"],
        row["event_id"],
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
        row["id"],
        row["namespace"],
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
        row["note"],
        row["actor"],
    )


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
