"""Stores written before the hash chain, and their upgrade (`feedbackguard store init`).

Such a store signed each row, tombstone and version on its own (the `v1` forms
below), unchained, with `event_id` unique store-wide and tombstones without a
namespace. It is refused until upgraded. The upgrade first checks it the way it was
checked then (every signature, every version's counts and keyed set digest), and
refuses a store that does not pass; then it moves the old tables aside, creates the
new ones and appends every entry to a new chain in the order it was written (each
version's new rows, its tombstones, the version; the rows after the last version),
keeping row and tombstone ids, and drops the old tables: one transaction, all or
nothing.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from feedbackguard.store import signing
from feedbackguard.store.errors import IntegrityError, LegacyStoreError
from feedbackguard.store.queries import stream
from feedbackguard.store.rows import (
    Head,
    Row,
    item_message,
    tombstone_message,
    version_message,
)
from feedbackguard.store.schema import items, metadata, tombstones, versions_table


def is_legacy(conn: sa.Connection) -> bool:
    """Whether the database holds the store's tables in their form before the chain."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("fg_items"):
        return False
    return "position" not in {c["name"] for c in inspector.get_columns("fg_items")}


def refuse(conn: sa.Connection) -> None:
    """`LegacyStoreError` for a store written before the chain."""
    if is_legacy(conn):
        raise LegacyStoreError(
            "this store was written by a feedbackguard from before the hash chain: "
            "run `feedbackguard store init` to check and upgrade it"
        )


# -- the store as it was ---------------------------------------------------------------

_V1_ITEM = "fg.store.item.v1"
_V1_TOMBSTONE = "fg.store.tombstone.v1"
_V1_VERSION = "fg.store.version.v1"
_V1_MEMBER = b"fg.store.member.v1:"
_DIGEST_MODULUS = 1 << 256
_OLD = {"items": "fg_items", "tombstones": "fg_tombstones", "versions": "fg_versions"}
_OLD_INDEXES = ("ix_fg_items_account_id", "ix_fg_tombstones_event", "ix_fg_tombstones_version")
_SUFFIX = "_v1"
_PAGE = 1000


def _v1_item(row: Row) -> bytes:
    return signing.canonical(
        _V1_ITEM,
        row["event_id"],
        row["namespace"],
        row["account_id"],
        row["item_id"],
        row["kind"],
        signing.utc_iso(row["received_at"]),
        signing.utc_iso(row["admitted_at"]),
        row["decided_by"],
        row["event"],
        row["decisions"],
    )


def _v1_tombstone(row: Row) -> bytes:
    return signing.canonical(
        _V1_TOMBSTONE,
        row["event_id"],
        row["action"],
        row["version"],
        row["reason"],
        row["actor"],
        signing.utc_iso(row["created_at"]),
    )


def _v1_version(row: Row) -> bytes:
    return signing.canonical(
        _V1_VERSION,
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


def _member(key: bytes, event_id: str) -> int:
    return int(signing.sign(key, _V1_MEMBER + event_id.encode("utf-8", "surrogatepass")), 16)


@dataclass
class _Old:
    """The tables of a store from before the chain, moved aside."""

    items: sa.Table
    tombstones: sa.Table
    versions: sa.Table

    @classmethod
    def reflect(cls, conn: sa.Connection) -> _Old:
        found = sa.MetaData()
        return cls(*(sa.Table(name + _SUFFIX, found, autoload_with=conn) for name in _OLD.values()))


def _problems_v1(conn: sa.Connection, key: bytes, old: _Old) -> list[str]:
    """What `store verify` found in a store before the chain: signatures, and each
    version's row count, set digest and tombstone count."""
    problems: list[str] = []
    versions = [dict(r._mapping) for r in conn.execute(sa.select(old.versions).order_by("version"))]
    for version in versions:
        if not signing.verify(key, _v1_version(version), version["signature"]):
            problems.append(f"version {version['version']} does not verify")
    marks = [v["watermark"] for v in versions]
    rows = [0] * (len(versions) + 1)
    sums = [0] * (len(versions) + 1)
    for row in stream(conn, sa.select(old.items).order_by(old.items.c.id)):
        if not signing.verify(key, _v1_item(row), row["signature"]):
            problems.append(f"row {row['id']} does not verify")
        bucket = bisect.bisect_left(marks, row["id"])
        rows[bucket] += 1
        sums[bucket] += _member(key, row["event_id"])
    per_version: Counter[int] = Counter()
    for row in stream(conn, sa.select(old.tombstones).order_by(old.tombstones.c.id)):
        per_version[row["version"]] += 1
        if not signing.verify(key, _v1_tombstone(row), row["signature"]):
            problems.append(f"tombstone {row['id']} does not verify")
    below = list(itertools.accumulate(rows))
    digests = [f"{total % _DIGEST_MODULUS:064x}" for total in itertools.accumulate(sums)]
    running = 0
    for index, version in enumerate(versions):
        running += per_version[version["version"]]
        signed = (version["rows"], version["members"], version["tombstones"])
        if (below[index], digests[index], running) != signed:
            problems.append(f"version {version['version']}: rows or tombstones deleted or moved")
    return problems


# -- the upgrade -----------------------------------------------------------------------


def upgrade(conn: sa.Connection, key: bytes) -> int:
    """Upgrade a store from before the chain in the write transaction `conn` (see the
    module's docstring); returns how many entries were chained. `IntegrityError`, and
    nothing changed, when the store does not pass the check it had then."""
    for table in _OLD.values():
        conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}{_SUFFIX}"))
    for index in _OLD_INDEXES:
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {index}"))
    old = _Old.reflect(conn)
    problems = _problems_v1(conn, key, old)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise IntegrityError(
            f"the store does not verify as it was written ({shown}): it was not upgraded"
        )
    metadata.create_all(conn)
    chain = _Rechain(conn, key)
    watermark = 0
    for version in conn.execute(sa.select(old.versions).order_by("version")).mappings().all():
        chain.items(old, watermark, version["watermark"])
        chain.tombstones(old, version["version"])
        chain.version(version)
        watermark = version["watermark"]
    chain.items(old, watermark, None)
    for table in _OLD.values():
        conn.execute(sa.text(f"DROP TABLE {table}{_SUFFIX}"))
    return chain.head.position


class _Rechain:
    """Appends the old entries, in the order they were written, to a new chain."""

    def __init__(self, conn: sa.Connection, key: bytes) -> None:
        self.conn = conn
        self.key = key
        self.head = Head()

    def _append(self, table: sa.Table, rows: list[dict[str, Any]], message: Any) -> None:
        for row in rows:
            row.pop("signature", None)
            row.pop("members", None)
            self.head = self.head.then(self.key, message(row))
            row["position"], row["signature"] = self.head.position, self.head.digest
        if rows:
            self.conn.execute(sa.insert(table), rows)

    def items(self, old: _Old, after: int, upto: int | None) -> None:
        """The old rows with `after < id <= upto` (no upper bound for None)."""
        while True:
            query = sa.select(old.items).where(old.items.c.id > after)
            if upto is not None:
                query = query.where(old.items.c.id <= upto)
            page = [
                dict(r)
                for r in self.conn.execute(query.order_by(old.items.c.id).limit(_PAGE)).mappings()
            ]
            if not page:
                return
            self._append(items, page, item_message)
            after = page[-1]["id"]

    def tombstones(self, old: _Old, version: int) -> None:
        """The old tombstones of `version`, with the namespace of their event's row."""
        namespace = (
            sa.select(old.items.c.namespace)
            .where(old.items.c.event_id == old.tombstones.c.event_id)
            .scalar_subquery()
        )
        query = (
            sa.select(old.tombstones, namespace.label("namespace"))
            .where(old.tombstones.c.version == version)
            .order_by(old.tombstones.c.id)
        )
        rows = [dict(r) for r in self.conn.execute(query).mappings()]
        for row in rows:
            if row["namespace"] is None:
                raise IntegrityError(
                    f"tombstone {row['id']} is of an event the store does not hold: "
                    "it was not upgraded"
                )
        self._append(tombstones, rows, tombstone_message)

    def version(self, row: Any) -> None:
        self._append(versions_table, [dict(row)], version_message)
