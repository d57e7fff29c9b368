"""Reads shared by writing, exporting and verifying: streamed rows, the live rows of
a version, current tombstone states, version rows and the chain's head."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from feedbackguard.store.errors import StoreError
from feedbackguard.store.rows import Head, Row
from feedbackguard.store.schema import CHAINED, items, tombstones, versions_table

EventKey = tuple[str, str]  # (namespace, event_id): an event id is unique per namespace

STREAM_BATCH = 1000  # rows fetched per round trip when exporting / verifying
IN_CLAUSE_CHUNK = 500  # ids per `IN (...)` when resolving quarantine targets


def stream(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Row]:
    """Rows of `query` fetched `STREAM_BATCH` at a time (server-side cursor on PostgreSQL)."""
    result = conn.execute(query.execution_options(yield_per=STREAM_BATCH))
    try:
        yield from result.mappings()
    finally:
        result.close()


def chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """`values` in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def live_query(watermark: int | None, version: int | None) -> sa.Select[Any]:
    """Rows up to `watermark` whose latest tombstone up to `version` is not a quarantine."""
    conditions = [
        tombstones.c.namespace == items.c.namespace,
        tombstones.c.event_id == items.c.event_id,
    ]
    if version is not None:
        conditions.append(tombstones.c.version <= version)
    latest = (
        sa.select(tombstones.c.action)
        .where(*conditions)
        .order_by(tombstones.c.position.desc())
        .limit(1)
        .correlate(items)
        .scalar_subquery()
    )
    query = sa.select(items).where(sa.func.coalesce(latest, "restore") != "quarantine")
    if watermark is not None:
        query = query.where(items.c.id <= watermark)
    return query.order_by(items.c.id)


def by_namespace(events: Sequence[EventKey]) -> dict[str, list[str]]:
    """Event ids grouped by their namespace."""
    grouped: dict[str, list[str]] = {}
    for namespace, event_id in events:
        grouped.setdefault(namespace, []).append(event_id)
    return grouped


def current_actions(conn: sa.Connection, events: Sequence[EventKey]) -> dict[EventKey, str]:
    """The latest tombstone action of each event that has one."""
    actions: dict[EventKey, str] = {}
    for namespace, event_ids in by_namespace(events).items():
        for chunk in chunks(event_ids, IN_CLAUSE_CHUNK):
            query = (
                sa.select(tombstones.c.event_id, tombstones.c.action)
                .where(tombstones.c.namespace == namespace, tombstones.c.event_id.in_(chunk))
                .order_by(tombstones.c.position)
            )
            for event_id, action in conn.execute(query):
                actions[(namespace, event_id)] = action
    return actions


def chain_head(conn: sa.Connection) -> Head:
    """The entry with the highest position in any chained table, as the chain's head."""
    head = Head()
    for table in CHAINED:
        query = sa.select(table.c.position, table.c.signature).order_by(table.c.position.desc())
        row = conn.execute(query.limit(1)).first()
        if row is not None and row.position > head.position:
            head = Head(row.position, row.signature or "")
    return head


def signature_at(conn: sa.Connection, position: int) -> str | None:
    """The signature of the entry at `position`, None when no entry is there."""
    for table in CHAINED:
        query = sa.select(table.c.signature).where(table.c.position == position)
        row = conn.execute(query).first()
        if row is not None:
            return str(row.signature)
    return None


def next_id(conn: sa.Connection, table: sa.Table) -> int:
    """The id the next entry of `table` gets (ids only grow)."""
    top: int | None = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
    return (top or 0) + 1


def latest_version_row(conn: sa.Connection) -> dict[str, Any] | None:
    """The newest version's row, or None before the first version."""
    row = conn.execute(
        sa.select(versions_table).order_by(versions_table.c.version.desc()).limit(1)
    ).first()
    return None if row is None else dict(row._mapping)


def version_row(conn: sa.Connection, number: int) -> Row:
    """One version's row; `StoreError` when there is no such version."""
    row = conn.execute(sa.select(versions_table).where(versions_table.c.version == number)).first()
    if row is None:
        raise StoreError(f"no dataset version {number}")
    return row._mapping
