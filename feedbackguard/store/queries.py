"""Reads shared by writing, exporting and verifying: streamed rows, the live rows of
a version, current tombstone states and version rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from feedbackguard.store.errors import StoreError
from feedbackguard.store.rows import Row
from feedbackguard.store.schema import items, tombstones, versions_table

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
    conditions = [tombstones.c.event_id == items.c.event_id]
    if version is not None:
        conditions.append(tombstones.c.version <= version)
    latest = (
        sa.select(tombstones.c.action)
        .where(*conditions)
        .order_by(tombstones.c.id.desc())
        .limit(1)
        .correlate(items)
        .scalar_subquery()
    )
    query = sa.select(items).where(sa.func.coalesce(latest, "restore") != "quarantine")
    if watermark is not None:
        query = query.where(items.c.id <= watermark)
    return query.order_by(items.c.id)


def current_actions(conn: sa.Connection, event_ids: Sequence[str]) -> dict[str, str]:
    """The latest tombstone action of each event that has one."""
    actions: dict[str, str] = {}
    for chunk in chunks(event_ids, IN_CLAUSE_CHUNK):
        query = (
            sa.select(tombstones.c.event_id, tombstones.c.action)
            .where(tombstones.c.event_id.in_(chunk))
            .order_by(tombstones.c.id)
        )
        for event_id, action in conn.execute(query):
            actions[event_id] = action
    return actions


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
