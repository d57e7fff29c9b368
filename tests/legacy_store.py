"""A store as feedbackguard wrote it before the hash chain (its tables and its
one-by-one signatures), for the upgrade tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.store import admission, signing
from feedbackguard.store.legacy import (
    _DIGEST_MODULUS,
    _member,
    _v1_item,
    _v1_tombstone,
    _v1_version,
)

_old = sa.MetaData()
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

items = sa.Table(
    "fg_items",
    _old,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(256), nullable=False, unique=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(256), nullable=False, index=True),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(256), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("decisions", sa.Text, nullable=False),
    sa.Column("signature", sa.String(64)),
    sqlite_autoincrement=True,
)
tombstones = sa.Table(
    "fg_tombstones",
    _old,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(256), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.String(64)),
    sa.Index("ix_fg_tombstones_event", "event_id", "id"),
    sqlite_autoincrement=True,
)
versions = sa.Table(
    "fg_versions",
    _old,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
    sa.Column("tombstones", sa.BigInteger, nullable=False),
    sa.Column("changed", sa.BigInteger, nullable=False),
    sa.Column("members", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("signature", sa.String(64)),
)


def write_legacy_store(url: str, key: bytes, events: Sequence[FeedbackEvent]) -> None:
    """The events admitted, version 1 over them, version 2 quarantining `events[2]`."""
    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _old.create_all(conn)
        for event in events:
            stored = admission(
                event,
                [Decision(event_id=event.event_id, status="admitted", risk=0.1, policy_version=1)],
            )
            row = {
                "event_id": stored.event_id,
                "namespace": stored.namespace,
                "account_id": stored.account_id,
                "item_id": stored.item_id,
                "kind": stored.kind,
                "received_at": stored.received_at,
                "admitted_at": now,
                "decided_by": stored.decided_by,
                "event": stored.event,
                "decisions": stored.decisions,
            }
            conn.execute(sa.insert(items), {**row, "signature": signing.sign(key, _v1_item(row))})
        members = sum(_member(key, e.event_id) for e in events) % _DIGEST_MODULUS
        base = {"created_at": now, "watermark": len(events), "rows": len(events)}
        base |= {"members": f"{members:064x}", "actor": "test"}
        first = {**base, "version": 1, "quarantined": 0, "tombstones": 0, "changed": 0}
        first["note"] = "nightly"
        second = {**base, "version": 2, "quarantined": 1, "tombstones": 1, "changed": 1}
        second["note"] = "quarantine: sybil"
        tombstone = {
            "event_id": events[2].event_id,
            "action": "quarantine",
            "version": 2,
            "reason": "sybil",
            "actor": "test",
            "created_at": now,
        }
        conn.execute(
            sa.insert(versions), {**first, "signature": signing.sign(key, _v1_version(first))}
        )
        conn.execute(
            sa.insert(tombstones),
            {**tombstone, "signature": signing.sign(key, _v1_tombstone(tombstone))},
        )
        conn.execute(
            sa.insert(versions), {**second, "signature": signing.sign(key, _v1_version(second))}
        )
    engine.dispose()
