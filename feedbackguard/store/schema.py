"""The store's tables, written only through `feedbackguard.store.store.Store`.

* `fg_items` — one row per admitted or moderator-approved event: the event JSON, its
  decision trail, an increasing row id (the sequence) and an HMAC signature. Rows are
  never updated or deleted. `event_id` is unique, so a batch re-written after a crash
  inserts nothing twice.
* `fg_tombstones` — quarantine / restore entries, signed; for one event the latest
  entry wins. They are how an item leaves (or comes back to) the training data
  without the row ever changing.
* `fg_versions` — dataset versions. Version V is a watermark: every row with
  `id <= watermark(V)`, minus the events whose latest tombstone up to V is a
  quarantine. Each version also records signed counts and a keyed digest of the set
  of event ids it contains, so `verify` notices rows deleted or renumbered under an
  existing version, not only rows altered.
* `fg_meta` — facts about the store itself, one row per name: `key_id`, the id of
  the signing key its rows are signed with (`feedbackguard.store.keyid`), so a store
  is never opened with a missing or different key. Created with the other tables,
  also in stores made before it existed.
"""

from __future__ import annotations

import sqlalchemy as sa

from feedbackguard.events import MAX_ID_CHARS

metadata = sa.MetaData()
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: rowid alias

items = sa.Table(
    "fg_items",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(MAX_ID_CHARS), nullable=False, unique=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(MAX_ID_CHARS), nullable=False, index=True),
    sa.Column("item_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("decisions", sa.Text, nullable=False),
    sa.Column("signature", sa.String(64)),
    sqlite_autoincrement=True,  # ids never reused
)

tombstones = sa.Table(
    "fg_tombstones",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.String(64)),
    sa.Index("ix_fg_tombstones_event", "event_id", "id"),
    sqlite_autoincrement=True,
)

versions_table = sa.Table(
    "fg_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
    sa.Column("tombstones", sa.BigInteger, nullable=False),
    sa.Column("changed", sa.BigInteger, nullable=False),
    sa.Column("members", sa.String(64), nullable=False),
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
