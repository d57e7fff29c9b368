"""The store's tables, written only through `feedbackguard.store.store.Store`.

Every entry of the three data tables (a row, a tombstone, a version) has a
`position` on one hash chain that runs through all three in the order they were
written, and a `signature` that is the chain's link there: an HMAC over the entry's
content, its position and the previous entry's signature (`feedbackguard.store.rows`).
An entry changed, deleted, moved or inserted outside feedbackguard breaks the chain;
the newest entries cut off are found against the head kept outside the database
(`feedbackguard.store.head`).

* `fg_items` — one row per admitted or moderator-approved event: the event JSON, its
  decision trail and an increasing row id. Rows are never updated or deleted.
  `(namespace, event_id)` is unique: an event id is unique within its namespace only.
* `fg_tombstones` — quarantine / restore entries of one event each, written with the
  version they belong to; for one event the latest entry (by position) wins. They are
  how an item leaves (or comes back to) the training data without the row changing.
* `fg_versions` — dataset versions. Version V is a watermark: every row with
  `id <= watermark(V)`, minus the events whose latest tombstone up to V is a
  quarantine; it records its counts (rows, quarantined, tombstones), which `verify`
  recomputes from the chain.
* `fg_meta` — facts about the store itself, one row per name: `key_id`, the id of
  the signing key its entries are signed with (`feedbackguard.store.keyid`), so a
  store is never opened with a missing or different key.
"""

from __future__ import annotations

import sqlalchemy as sa

from feedbackguard.events import MAX_ID_CHARS

metadata = sa.MetaData()
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: rowid alias
NAMESPACE_CHARS = 64

items = sa.Table(
    "fg_items",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False, unique=True),
    sa.Column("namespace", sa.String(NAMESPACE_CHARS), nullable=False),
    sa.Column("event_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("account_id", sa.String(MAX_ID_CHARS), nullable=False, index=True),
    sa.Column("item_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("decisions", sa.Text, nullable=False),
    sa.Column("signature", sa.String(64)),
    sa.UniqueConstraint("namespace", "event_id", name="uq_fg_items_event"),
)

tombstones = sa.Table(
    "fg_tombstones",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False, unique=True),
    sa.Column("namespace", sa.String(NAMESPACE_CHARS), nullable=False),
    sa.Column("event_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.String(64)),
    sa.Index("ix_fg_tombstones_event", "namespace", "event_id", "position"),
)

versions_table = sa.Table(
    "fg_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
    sa.Column("tombstones", sa.BigInteger, nullable=False),
    sa.Column("changed", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("actor", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("signature", sa.String(64)),
)

meta = sa.Table(
    "fg_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

CHAINED = (items, tombstones, versions_table)
"""The tables whose entries are links of the chain."""
