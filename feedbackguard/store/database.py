"""The store's connection to its database, and the transactions it writes and reads in.

Every write appends to the store's hash chain, so writers take turns: on SQLite (WAL,
busy timeout) every write transaction starts with `BEGIN IMMEDIATE`, so writers queue
instead of failing half-way; on PostgreSQL every write transaction holds one
exclusive advisory lock. Readers never wait.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's write lock
# One advisory lock key for every feedbackguard store in a PostgreSQL database.
PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"feedbackguard.store").digest()[:8], "big") >> 1
PRIVATE_FILE_MODE = 0o600  # the SQLite file when the store creates it
_WRITE = "feedbackguard_write"  # execution option marking a write transaction (SQLite)


class Database:
    """One engine for this process, and the store's write and read transactions."""

    def __init__(self, url: sa.URL) -> None:
        self._pid = os.getpid()
        self._engine = _create_engine(url)
        self.is_pg = self._engine.dialect.name == "postgresql"
        self.insert = postgresql.insert if self.is_pg else sqlite.insert

    def dispose(self) -> None:
        self._engine.dispose()

    def _engine_here(self) -> sa.Engine:
        """The engine, made safe after a fork: a child never reuses its parent's sockets."""
        if os.getpid() != self._pid:
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A write transaction, the only one running: each write extends the chain
        from the head the previous one left."""
        with self._engine_here().connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                if self.is_pg:
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK_KEY)))
                yield conn

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read transaction: one consistent snapshot on SQLite; never blocks writers."""
        with self._engine_here().connect() as conn:
            if self.is_pg:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600, whatever the umask):
    it holds password and key hashes and raw IPs. SQLite gives its -wal and -shm files
    the database file's mode. A new parent directory is made 0700; an existing file or
    directory keeps its mode (the operator chose it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, PRIVATE_FILE_MODE)
    os.close(fd)


def _create_engine(url: sa.URL) -> sa.Engine:
    """An engine for this process. SQLite: WAL, a busy timeout, and explicit BEGINs
    (IMMEDIATE for writes) instead of pysqlite's implicit transactions."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        _create_private(Path(url.database))
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous=FULL")  # an admitted item survives power loss
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
