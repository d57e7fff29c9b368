"""`Store`: the append-only retraining store, the one writer of its tables.

`admit` appends signed rows and is idempotent on `event_id` (`INSERT .. ON CONFLICT
DO NOTHING`); `quarantine` / `restore` write signed tombstones in a new dataset
version; `new_version` / `snapshot` mark a watermark. Rows are never updated or
deleted. What the tables hold is in `feedbackguard.store.schema`, how rows are signed
in `feedbackguard.store.rows`, how writers are kept apart in
`feedbackguard.store.database`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from feedbackguard.decisions import Decision
from feedbackguard.embedded import mark_home
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import keyid, signing
from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.database import Database
from feedbackguard.store.errors import StoreKeyError
from feedbackguard.store.export import Progress, export_version
from feedbackguard.store.manifest import Manifest
from feedbackguard.store.models import StoredItem, Version
from feedbackguard.store.queries import (
    IN_CLAUSE_CHUNK,
    chunks,
    current_actions,
    latest_version_row,
    live_query,
    stream,
    version_row,
)
from feedbackguard.store.rows import (
    DIGEST_MODULUS,
    EMPTY_MEMBERS,
    Admission,
    admission,
    member_hash,
    parse_item,
    parse_version,
    signed_rows,
    tombstone_message,
    version_message,
)
from feedbackguard.store.schema import items, metadata, tombstones, versions_table
from feedbackguard.store.verify import VerifyReport, verify_store
from feedbackguard.store.writers import ExportFormat

STORE_FILE_NAME = "store.db"

Action = Literal["quarantine", "restore"]


class Store:
    """The append-only retraining store. Create one per process (it owns an engine)."""

    def __init__(self, url: str, signing_key: bytes) -> None:
        self.url = sa.make_url(url)
        self._key = signing.check_key(signing_key)
        self._db = Database(self.url)
        with self._db.writing(exclusive=True) as conn:
            metadata.create_all(conn)  # checkfirst: adds tables missing from older stores
            # The id of the key the rows are signed with, recorded on first opening.
            self.key_id = keyid.record_once(conn, self._key)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store of a deployment: `store_url` (or SQLite under `home`) and its key
        (`signing_key`, or `<home>/signing.key`).

        The key file is generated only for a store never written to (no row, no
        recorded key id): `feedbackguard store init`, or the embedded default's first
        use. A store in use whose key file is missing, or whose recorded key id is not
        the key's, is refused with `StoreKeyError` rather than signed with a new key.
        """
        url = settings.store_url
        if url is None:
            url = f"sqlite:///{(settings.home / STORE_FILE_NAME).resolve()}"
        key_file = settings.home / signing.KEY_FILE_NAME
        if settings.signing_key is not None:
            key = settings.signing_key.get_secret_value().encode()
            source = "FEEDBACKGUARD_SIGNING_KEY"
        else:
            source = f"the key file {key_file.resolve()}"
            if not key_file.exists():
                _refuse_new_key_for_used_store(sa.make_url(url), settings.home, key_file)
            key = signing.load_or_create_key(key_file)
        store = cls(url, key)
        if store.key_id != keyid.key_id(key):
            store.close()
            raise StoreKeyError(
                f"the store {store.url.render_as_string(hide_password=True)} is signed with "
                f"key id {store.key_id}, but {source} has key id {keyid.key_id(key)} "
                f"(FEEDBACKGUARD_HOME={settings.home.resolve()}): set FEEDBACKGUARD_HOME "
                "to the home that holds the store's signing.key"
            )
        if settings.store_url is None or settings.signing_key is None:
            mark_home(settings.home)  # the home holds the store or its key
        return store

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def admit(self, batch: Sequence[tuple[FeedbackEvent, Decision | Sequence[Decision]]]) -> int:
        """Append admitted items; returns how many were new.

        Each item is an event and its decision trail (or its one decision), which must
        end in `admitted`; otherwise nothing of the batch is written. Events already
        in the store (same event_id) are skipped, so replaying a batch is harmless.

        The rows go in as one executemany (psycopg pipelines it) guarded by
        `ON CONFLICT DO NOTHING`; events found present beforehand are not even signed.
        The count is exact even when several workers admit the same events at once.
        """
        return self.admit_encoded(
            [admission(event, _as_trail(decisions)) for event, decisions in batch]
        )

    def admit_encoded(self, batch: Sequence[Admission]) -> int:
        """`admit` for items already in their stored form (`admission`,
        `admission_from_json`); returns how many were new."""
        if not batch:
            return 0
        admitted_at = datetime.now(UTC)
        fresh: dict[str, Admission] = {}
        for item in batch:
            fresh.setdefault(item.event_id, item)
        stmt = self._db.insert(items).on_conflict_do_nothing(index_elements=[items.c.event_id])
        with self._db.writing(exclusive=False) as conn:
            present: set[str] = set()
            for condition in self._event_id_in(list(fresh)):
                present.update(conn.execute(sa.select(items.c.event_id).where(condition)).scalars())
            rows = signed_rows(
                self._key,
                [item for event_id, item in fresh.items() if event_id not in present],
                admitted_at,
            )
            if not rows:
                return 0
            conn.execute(stmt, rows)
            if not self._db.is_pg:
                return len(rows)  # writers are serialised: nobody slipped in between
            # Another worker may have inserted some of these meanwhile: count the rows
            # this transaction wrote (their xmin is our transaction id).
            ours = sa.text("xmin = pg_current_xact_id()::xid")
            inserted = 0
            for condition in self._event_id_in([row["event_id"] for row in rows]):
                query = sa.select(sa.func.count()).select_from(items).where(condition, ours)
                inserted += conn.execute(query).scalar_one()
            return inserted

    def _event_id_in(self, event_ids: Sequence[str]) -> Iterator[sa.ColumnElement[bool]]:
        """`event_id IN (...)` conditions covering `event_ids`: one `= ANY(array)` on
        PostgreSQL (one parameter, cheap to send), chunked `IN` lists on SQLite."""
        if self._db.is_pg:
            array = sa.bindparam("event_ids", list(event_ids), type_=postgresql.ARRAY(sa.Text))
            yield items.c.event_id == sa.any_(array)
            return
        for chunk in chunks(event_ids, IN_CLAUSE_CHUNK):
            yield items.c.event_id.in_(chunk)

    def new_version(self, note: str = "", actor: str = "system") -> Version:
        """Mark the rows appended so far as a new dataset version."""
        with self._db.writing(exclusive=True) as conn:
            return self._create_version(conn, note, actor, changes=[])

    def snapshot(self, note: str = "export", actor: str = "system") -> Version:
        """The latest version if it already holds every row, else a new version."""
        with self._db.writing(exclusive=True) as conn:
            latest = latest_version_row(conn)
            top = conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0
            if latest is not None and latest["watermark"] == top:
                return parse_version(latest)
            return self._create_version(conn, note, actor, changes=[])

    def quarantine(
        self,
        event_ids: Sequence[str] | None = None,
        account_ids: Sequence[str] | None = None,
        *,
        reason: str,
        actor: str,
    ) -> Version:
        """Take items out of the training data from a new version on (the rows stay).

        `account_ids` selects the accounts' items admitted so far. Items already
        quarantined are left alone. Older versions keep exporting what they did.
        """
        return self._tombstone("quarantine", event_ids, account_ids, reason, actor)

    def restore(
        self,
        event_ids: Sequence[str] | None = None,
        account_ids: Sequence[str] | None = None,
        *,
        reason: str,
        actor: str,
    ) -> Version:
        """Bring quarantined items back from a new version on."""
        return self._tombstone("restore", event_ids, account_ids, reason, actor)

    def _tombstone(
        self,
        action: Action,
        event_ids: Sequence[str] | None,
        account_ids: Sequence[str] | None,
        reason: str,
        actor: str,
    ) -> Version:
        if not event_ids and not account_ids:
            raise ValueError(f"{action}: give event_ids or account_ids")
        with self._db.writing(exclusive=True) as conn:
            targets: set[str] = set()
            for chunk in chunks(list(event_ids or ()), IN_CLAUSE_CHUNK):
                query = sa.select(items.c.event_id).where(items.c.event_id.in_(chunk))
                targets.update(conn.execute(query).scalars())
            for chunk in chunks(list(account_ids or ()), IN_CLAUSE_CHUNK):
                query = sa.select(items.c.event_id).where(items.c.account_id.in_(chunk))
                targets.update(conn.execute(query).scalars())
            state = current_actions(conn, sorted(targets))
            changes = [e for e in sorted(targets) if state.get(e, "restore") != action]
            note = f"{action}: {reason}"
            return self._create_version(
                conn, note, actor, changes=[(e, action, reason) for e in changes]
            )

    def _create_version(
        self,
        conn: sa.Connection,
        note: str,
        actor: str,
        changes: Sequence[tuple[str, Action, str]],
    ) -> Version:
        """Write `changes` as tombstones of a new version, and the version itself.
        Called inside an exclusive write transaction."""
        latest = latest_version_row(conn)
        number = 1 if latest is None else latest["version"] + 1
        prev_watermark = 0 if latest is None else latest["watermark"]
        watermark = conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0
        new_ids = conn.execute(
            sa.select(items.c.event_id).where(items.c.id > prev_watermark, items.c.id <= watermark)
        ).scalars()
        total = int(EMPTY_MEMBERS if latest is None else latest["members"], 16)
        new_rows = 0
        for event_id in new_ids:
            total = (total + member_hash(self._key, event_id)) % DIGEST_MODULUS
            new_rows += 1
        now = datetime.now(UTC)
        if changes:
            rows = [
                {
                    "event_id": event_id,
                    "action": action,
                    "version": number,
                    "reason": reason,
                    "actor": actor,
                    "created_at": now,
                }
                for event_id, action, reason in changes
            ]
            for row in rows:
                row["signature"] = signing.sign(self._key, tombstone_message(row))
            conn.execute(sa.insert(tombstones), rows)
        delta = sum(1 if action == "quarantine" else -1 for _, action, _ in changes)
        row = {
            "version": number,
            "created_at": now,
            "watermark": watermark,
            "rows": (0 if latest is None else latest["rows"]) + new_rows,
            "quarantined": (0 if latest is None else latest["quarantined"]) + delta,
            "tombstones": (0 if latest is None else latest["tombstones"]) + len(changes),
            "changed": len(changes),
            "members": f"{total:064x}",
            "note": note,
            "actor": actor,
        }
        row["signature"] = signing.sign(self._key, version_message(row))
        conn.execute(sa.insert(versions_table), row)
        return parse_version(row)

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        """Rows appended so far (quarantined ones included: rows are never removed)."""
        with self._db.reading() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()

    def get(self, event_id: str) -> StoredItem | None:
        """One stored item by event_id, with its current quarantine state."""
        with self._db.reading() as conn:
            row = conn.execute(sa.select(items).where(items.c.event_id == event_id)).first()
            if row is None:
                return None
            state = current_actions(conn, [event_id]).get(event_id)
        return parse_item(row._mapping, quarantined=state == "quarantine")

    def versions(self) -> list[Version]:
        """Every dataset version, oldest first."""
        with self._db.reading() as conn:
            rows = conn.execute(sa.select(versions_table).order_by(versions_table.c.version))
            return [parse_version(r._mapping) for r in rows]

    def version(self, number: int) -> Version:
        """One version; `StoreError` when there is no such version."""
        with self._db.reading() as conn:
            return parse_version(version_row(conn, number))

    def iter_rows(self, version: int | None = None) -> Iterator[StoredItem]:
        """The live items of `version` (or of the store as it is now), oldest first."""
        with self._db.reading() as conn:
            if version is None:
                query = live_query(None, None)
            else:
                row = version_row(conn, version)
                query = live_query(row["watermark"], version)
            for row in stream(conn, query):
                yield parse_item(row)

    def export(
        self,
        path: Path | str,
        fmt: ExportFormat = "jsonl",
        version: int | None = None,
        caps: ExportCaps | None = None,
        progress: Progress | None = None,
        actor: str = "system",
    ) -> Manifest:
        """Write the live items of `version` to `path` and a signed manifest beside it.

        Without `version`, the current state is exported as a version (`snapshot`),
        so every export is reproducible. Rows are streamed, verified as they are read
        (a tampered row or tombstone aborts the export with `IntegrityError`), and
        written to a temporary file renamed into place only when complete.
        """

        def choose() -> Version:
            return self.snapshot(actor=actor) if version is None else self.version(version)

        return export_version(self._db, self._key, Path(path), fmt, choose, caps, progress)

    def verify(self) -> VerifyReport:
        """Check every signature, and every version's counts and set digest.

        Finds rows and tombstones altered or inserted outside feedbackguard (bad or
        missing signature), and rows deleted or renumbered under an existing version.
        """
        with self._db.reading() as conn:
            return verify_store(conn, self._key)


def _refuse_new_key_for_used_store(url: sa.URL, home: Path, key_file: Path) -> None:
    """`StoreKeyError` when the store at `url` holds rows or a recorded key id: a new
    key would make every existing row read as written outside feedbackguard."""
    engine = sa.create_engine(url)
    try:
        has_rows, recorded = keyid.in_use(engine)
    finally:
        engine.dispose()
    if not has_rows and recorded is None:
        return
    signed = f"key id {recorded}" if recorded else "a key"
    raise StoreKeyError(
        f"the signing key file {key_file.resolve()} is missing, but the store "
        f"{url.render_as_string(hide_password=True)} holds data signed with {signed} "
        f"(FEEDBACKGUARD_HOME={home.resolve()}): set FEEDBACKGUARD_HOME to the home that "
        "holds its signing.key, or restore the key file; a new key is made only by "
        "`feedbackguard store init` on an empty store"
    )


def _as_trail(decisions: Decision | Sequence[Decision]) -> tuple[Decision, ...]:
    return (decisions,) if isinstance(decisions, Decision) else tuple(decisions)
