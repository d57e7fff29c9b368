"""The id of the signing key a store is signed with, recorded in the store itself.

A key id is a short SHA-256 digest of the key (domain-separated, never the key): it
tells whether the key at hand is the one the store's rows were signed with, without
revealing anything usable about the key. The store records it once, when first
opened with a key; `Store.from_settings` then refuses a missing or different key
instead of signing new rows with a new key under which every existing row would read
as "written outside feedbackguard".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

from feedbackguard.store.schema import items, meta, tombstones, versions_table

KEY_ID_NAME = "key_id"
KEY_ID_CHARS = 16
_DOMAIN = b"feedbackguard.key-id\x00"


def key_id(key: bytes) -> str:
    """The key's id: the first hex digits of SHA-256 over a domain tag and the key."""
    return hashlib.sha256(_DOMAIN + key).hexdigest()[:KEY_ID_CHARS]


def recorded(conn: sa.Connection) -> str | None:
    """The key id the store records, if any (`fg_meta` must exist)."""
    query = sa.select(meta.c.value).where(meta.c.name == KEY_ID_NAME)
    value: str | None = conn.execute(query).scalar()
    return value


def record_once(conn: sa.Connection, key: bytes) -> str:
    """Record `key`'s id unless an id is recorded already; return the recorded id.
    Called inside an exclusive write transaction, so concurrent openers agree."""
    found = recorded(conn)
    if found is not None:
        return found
    conn.execute(sa.insert(meta).values(name=KEY_ID_NAME, value=key_id(key)))
    return key_id(key)


def in_use(engine: sa.Engine) -> tuple[bool, str | None]:
    """Whether the store behind `engine` holds any row, and its recorded key id;
    reads only (creates no table). A store without tables is unused."""
    url = engine.url
    on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if on_disk and not Path(str(url.database)).exists():  # connecting would create it
        return False, None
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        has_rows = any(
            table.name in tables
            and conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
            is not None
            for table in (items, tombstones, versions_table)
        )
        found = recorded(conn) if meta.name in tables else None
    return has_rows, found
