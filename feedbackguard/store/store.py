"""`Store`: the append-only retraining store, the one writer of its tables.

Every write appends entries to one hash chain (`feedbackguard.store.rows`): `admit`
appends signed rows and is idempotent on `(namespace, event_id)`; `quarantine` /
`restore` write signed tombstones and a new dataset version; `new_version` /
`snapshot` mark a watermark. Entries are never updated or deleted. With a Redis
client, each write publishes the chain's new head there and each version goes into
the audit log (`feedbackguard.store.head`). What the tables hold is in
`feedbackguard.store.schema`, how writers take turns in `feedbackguard.store.database`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.dialects import postgresql

from feedbackguard.decisions import Decision
from feedbackguard.embedded import mark_home
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import keyid, legacy, publickey, signing
from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.database import Database
from feedbackguard.store.errors import IntegrityError, StoreKeyError
from feedbackguard.store.export import Progress, export_version
from feedbackguard.store.head import OutsideHead
from feedbackguard.store.manifest import Manifest
from feedbackguard.store.models import StoredItem, Version
from feedbackguard.store.queries import (
    IN_CLAUSE_CHUNK,
    EventKey,
    by_namespace,
    chain_head,
    chunks,
    current_actions,
    latest_version_row,
    live_query,
    next_id,
    signature_at,
    stream,
    version_row,
)
from feedbackguard.store.rows import (
    Admission,
    Head,
    admission,
    parse_item,
    parse_version,
    signed_rows,
    tombstone_message,
    version_message,
)
from feedbackguard.store.schema import items, metadata, tombstones, versions_table
from feedbackguard.store.verify import Expected, VerifyReport, verify_store

STORE_FILE_NAME = "store.db"

Action = Literal["quarantine", "restore"]


@dataclass(frozen=True)
class _Change:
    """What a quarantine or restore asks for."""

    action: Action
    events: list[EventKey]
    account_ids: list[str]
    reason: str


class Store:
    """The append-only retraining store. Create one per process (it owns an engine).

    `r`, when given, is where the chain's head is kept outside the database: every
    write publishes it and checks it first, `verify` and `export` compare with it.
    """

    def __init__(
        self,
        url: str,
        signing_key: bytes,
        r: redis.Redis[bytes] | None = None,
        *,
        upgrade: bool = False,
        export_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.url = sa.make_url(url)
        self._key = signing.check_key(signing_key)
        self._export_key = export_key  # signs export manifests (`publickey`)
        self._db = Database(self.url)
        self.upgraded = 0  # entries chained by `upgrade`
        try:
            with self._db.writing() as conn:
                if not upgrade:
                    legacy.refuse(conn)  # a store from before the chain
                elif legacy.is_legacy(conn):
                    self.upgraded = legacy.upgrade(conn, self._key)
                metadata.create_all(conn)  # checkfirst
                # The id of the key the entries are signed with, recorded on first opening.
                self.key_id = keyid.record_once(conn, self._key)
        except BaseException:
            self._db.dispose()
            raise
        self.outside = None if r is None else OutsideHead(r, keyid.key_id(self._key))

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        r: redis.Redis[bytes] | None = None,
        *,
        create: bool = False,
        upgrade: bool = False,
    ) -> Store:
        """The store of a deployment: `store_url` (or SQLite under `home`) and its key
        (`signing_key`, or `<home>/signing.key`); `r` keeps its head (see `Store`).
        `upgrade` (`feedbackguard store init`) upgrades a store written before the
        chain (`feedbackguard.store.legacy`), which is otherwise refused.

        Only `create` (`feedbackguard store init`, and the commands that make their
        home: `demo`, `worker`, `serve`, `replay`) generates the key file, and only
        for a store never written to (no row, no recorded key id). Without the key
        `StoreKeyError` names `feedbackguard store init`; a store in use whose key file
        is missing, or whose recorded key id is not the key's, is refused as well
        rather than signed with a new key.
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
                if not create:
                    raise StoreKeyError(
                        f"no signing key: {key_file.resolve()} does not exist and "
                        "FEEDBACKGUARD_SIGNING_KEY is not set "
                        f"(FEEDBACKGUARD_HOME={settings.home.resolve()}): run "
                        "`feedbackguard store init` to create the store and its key, or set "
                        "FEEDBACKGUARD_HOME to the home that holds them"
                    )
            key = signing.load_or_create_key(key_file)
        export_key = None
        if create:
            export_key = publickey.load_or_create(settings.home)
        elif (settings.home / publickey.PRIVATE_KEY_FILE_NAME).exists():
            export_key = publickey.load_private(settings.home / publickey.PRIVATE_KEY_FILE_NAME)
        store = cls(url, key, r, upgrade=upgrade, export_key=export_key)
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

    @property
    def export_public_key(self) -> Ed25519PublicKey | None:
        """The public key export manifests are signed for (None without an export key)."""
        return None if self._export_key is None else self._export_key.public_key()

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def _appending(self) -> Iterator[tuple[sa.Connection, list[Head]]]:
        """A write transaction and the chain's head: `heads[0]` is the head it starts
        from; the writer appends the head it leaves, published once committed.

        The head published outside must be on the chain: a chain that lost it was cut,
        and writing on would hide the cut, so the write is refused (`IntegrityError`).
        """
        with self._db.writing() as conn:
            head = chain_head(conn)
            if self.outside is not None:
                self._check_published(conn, head, self.outside.published())
            heads = [head]
            yield conn, heads
        if self.outside is not None:
            self.outside.publish(heads[-1])

    @staticmethod
    def _check_published(conn: sa.Connection, head: Head, published: Head | None) -> None:
        if published is None or published == Head():
            return
        if published.position <= head.position and (
            signature_at(conn, published.position) == published.digest
        ):
            return
        raise IntegrityError(
            f"the store's chain does not hold the head published in Redis (position "
            f"{published.position}; the chain ends at {head.position}): its newest entries "
            "were cut off or replaced outside feedbackguard. Nothing was written; run "
            "`feedbackguard store verify`"
        )

    def admit(self, batch: Sequence[tuple[FeedbackEvent, Decision | Sequence[Decision]]]) -> int:
        """Append admitted items; returns how many were new.

        Each item is an event and its decision trail (or its one decision), which must
        end in `admitted`; otherwise nothing of the batch is written. Events already
        in the store (same namespace and event_id) are skipped, so replaying a batch
        is harmless.
        """
        return self.admit_encoded(
            [admission(event, _as_trail(decisions)) for event, decisions in batch]
        )

    def admit_encoded(self, batch: Sequence[Admission]) -> int:
        """`admit` for items already in their stored form (`admission`,
        `admission_from_json`); returns how many were new. Events found present are
        not even signed; the new rows go in as one executemany."""
        if not batch:
            return 0
        admitted_at = datetime.now(UTC)
        fresh: dict[EventKey, Admission] = {}
        for item in batch:
            fresh.setdefault((item.namespace, item.event_id), item)
        with self._appending() as (conn, heads):
            present = self._present(conn, list(fresh))
            rows, head = signed_rows(
                self._key,
                [item for key, item in fresh.items() if key not in present],
                admitted_at,
                first_id=next_id(conn, items),
                head=heads[0],
            )
            if rows:
                conn.execute(sa.insert(items), rows)
            heads.append(head)
        return len(rows)

    def _present(self, conn: sa.Connection, events: Sequence[EventKey]) -> set[EventKey]:
        """Which of `events` the store holds: one `= ANY(array)` per namespace on
        PostgreSQL (one parameter, cheap to send), chunked `IN` lists on SQLite."""
        present: set[EventKey] = set()
        for namespace, event_ids in by_namespace(events).items():
            if self._db.is_pg:
                array = sa.bindparam("event_ids", event_ids, type_=postgresql.ARRAY(sa.Text))
                conditions = [items.c.event_id == sa.any_(array)]
            else:
                conditions = [items.c.event_id.in_(c) for c in chunks(event_ids, IN_CLAUSE_CHUNK)]
            for condition in conditions:
                query = sa.select(items.c.event_id).where(items.c.namespace == namespace, condition)
                present.update((namespace, e) for e in conn.execute(query).scalars())
        return present

    def new_version(self, note: str = "", actor: str = "system") -> Version:
        """Mark the rows appended so far as a new dataset version."""
        return self._versioned(note, actor)

    def snapshot(self, note: str = "export", actor: str = "system") -> Version:
        """The latest version if it already holds every row, else a new version."""
        return self._versioned(note, actor, reuse_latest=True)

    def quarantine(
        self,
        events: Sequence[EventKey] = (),
        account_ids: Sequence[str] = (),
        *,
        reason: str,
        actor: str,
    ) -> Version:
        """Take items out of the training data from a new version on (the rows stay).

        `events` are (namespace, event_id) pairs; `account_ids` selects the accounts'
        items admitted so far, in every namespace. Items already quarantined are left
        alone. Older versions keep exporting what they did.
        """
        return self._tombstone("quarantine", events, account_ids, reason, actor)

    def restore(
        self,
        events: Sequence[EventKey] = (),
        account_ids: Sequence[str] = (),
        *,
        reason: str,
        actor: str,
    ) -> Version:
        """Bring quarantined items back from a new version on."""
        return self._tombstone("restore", events, account_ids, reason, actor)

    def _tombstone(
        self,
        action: Action,
        events: Sequence[EventKey],
        account_ids: Sequence[str],
        reason: str,
        actor: str,
    ) -> Version:
        if not events and not account_ids:
            raise ValueError(f"{action}: give events or account_ids")
        change = _Change(action, list(events), list(account_ids), reason)
        return self._versioned(f"{action}: {reason}", actor, change)

    def _versioned(
        self,
        note: str,
        actor: str,
        change: _Change | None = None,
        reuse_latest: bool = False,
    ) -> Version:
        """Write a new version, with the tombstones of `change`, in one write
        transaction (with `reuse_latest`, the latest version instead when it holds
        every row); audited with its head when the store keeps its head outside."""
        with self._appending() as (conn, heads):
            latest = latest_version_row(conn)
            top = conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0
            if reuse_latest and latest is not None and latest["watermark"] == top:
                heads.append(heads[0])
                return parse_version(latest)
            changes: list[tuple[EventKey, Action, str]] = []
            if change is not None:
                found = self._present(conn, change.events) | _of_accounts(conn, change.account_ids)
                targets = sorted(found)
                state = current_actions(conn, targets)
                changes = [
                    (e, change.action, change.reason)
                    for e in targets
                    if state.get(e, "restore") != change.action
                ]
            version, head = self._create_version(conn, heads[0], latest, top, note, actor, changes)
            heads.append(head)
        if self.outside is not None:
            self.outside.audit(head, actor, version=version.version, changed=version.changed)
        return version

    def _create_version(
        self,
        conn: sa.Connection,
        head: Head,
        latest: dict[str, Any] | None,
        watermark: int,
        note: str,
        actor: str,
        changes: Sequence[tuple[EventKey, Action, str]],
    ) -> tuple[Version, Head]:
        """Append `changes` as tombstones of a new version with `watermark`, and the
        version itself; returns the version and the chain's head after it."""
        number = 1 if latest is None else latest["version"] + 1
        prev_watermark = 0 if latest is None else latest["watermark"]
        new_rows = conn.execute(
            sa.select(sa.func.count())
            .select_from(items)
            .where(items.c.id > prev_watermark, items.c.id <= watermark)
        ).scalar_one()
        now = datetime.now(UTC)
        first_id = next_id(conn, tombstones)
        rows = []
        for offset, ((namespace, event_id), action, reason) in enumerate(changes):
            row: dict[str, Any] = {
                "id": first_id + offset,
                "namespace": namespace,
                "event_id": event_id,
                "action": action,
                "version": number,
                "reason": reason,
                "actor": actor,
                "created_at": now,
            }
            head = head.then(self._key, tombstone_message(row))
            row["position"], row["signature"] = head.position, head.digest
            rows.append(row)
        if rows:
            conn.execute(sa.insert(tombstones), rows)
        delta = sum(1 if action == "quarantine" else -1 for _, action, _ in changes)

        def before(name: str) -> int:
            return 0 if latest is None else int(latest[name])

        vrow: dict[str, Any] = {
            "version": number,
            "created_at": now,
            "watermark": watermark,
            "rows": before("rows") + new_rows,
            "quarantined": before("quarantined") + delta,
            "tombstones": before("tombstones") + len(changes),
            "changed": len(changes),
            "note": note,
            "actor": actor,
        }
        head = head.then(self._key, version_message(vrow))
        vrow["position"], vrow["signature"] = head.position, head.digest
        conn.execute(sa.insert(versions_table), vrow)
        return parse_version(vrow), head

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        """Rows appended so far (quarantined ones included: rows are never removed)."""
        with self._db.reading() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()

    def get(self, namespace: str, event_id: str) -> StoredItem | None:
        """One stored item by namespace and event_id, with its current quarantine state."""
        with self._db.reading() as conn:
            query = sa.select(items).where(
                items.c.namespace == namespace, items.c.event_id == event_id
            )
            row = conn.execute(query).first()
            if row is None:
                return None
            state = current_actions(conn, [(namespace, event_id)]).get((namespace, event_id))
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

    def head(self) -> Head:
        """The chain's head as the database holds it."""
        with self._db.reading() as conn:
            return chain_head(conn)

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
        version: int | None = None,
        caps: ExportCaps | None = None,
        progress: Progress | None = None,
        actor: str = "system",
        *,
        include_pii: bool = False,
        per_item: bool = False,
    ) -> Manifest:
        """Write the live items of `version` to `path` and a signed manifest beside it.

        `path`'s suffix picks the format (`.jsonl` or `.parquet`); the rows are flat
        typed columns (`feedbackguard.store.flat`), one per event or, with `per_item`,
        one per item; personal data only with `include_pii`.

        Without `version`, the current state is exported as a version (`snapshot`),
        so every export is reproducible. The whole chain is verified first, in the
        read transaction the rows are then streamed from, against the heads kept
        outside (`IntegrityError` naming the first problems when it does not verify);
        what was written is checked against the version's counts; the data file is
        renamed into place only then. The manifest names the chain head verified.
        """

        def choose() -> Version:
            return self.snapshot(actor=actor) if version is None else self.version(version)

        if self._export_key is None:
            raise StoreKeyError(
                f"no export key ({publickey.PRIVATE_KEY_FILE_NAME} beside the signing key): "
                "run `feedbackguard store init` to make the export key pair"
            )
        return export_version(
            self._db,
            self._key,
            self._export_key,
            Path(path),
            choose,
            caps,
            progress,
            self._expected,
            include_pii=include_pii,
            per_item=per_item,
        )

    def verify(self, manifests: Sequence[Path] = ()) -> VerifyReport:
        """Check the whole chain: every entry's signature (its content, its position and
        the entry before it), no position missing, every version's counts, and that
        the heads kept outside (Redis, the audit log, the export `manifests` given) are
        on the chain, so entries cut off the end are found too."""
        expected = self._expected()
        for path in manifests:
            found = Manifest.model_validate_json(Path(path).read_bytes())
            if not signing.verify(self._key, found.signed_bytes(), found.signature):
                raise IntegrityError(f"the manifest {path} does not verify")
            expected.append(
                Expected(f"manifest {path}", Head(found.chain.position, found.chain.digest))
            )
        with self._db.reading() as conn:
            return verify_store(conn, self._key, expected, outside=self.outside is not None)

    def _expected(self) -> list[Expected]:
        """The heads kept outside the database, which the chain must hold."""
        if self.outside is None:
            return []
        found = [Expected("Redis", self.outside.published())]
        audited = self.outside.audited()
        if audited is not None:
            found.append(Expected("the audit log", audited))
        return found

    def adopt_head(self, actor: str, note: str) -> tuple[Head, Head | None]:
        """Publish the database's head as the one kept outside, whatever was published
        (a Redis that lost its data, a restored backup), once the chain verifies on its
        own; audited. Returns the head adopted and the one it replaced."""
        if self.outside is None:
            raise ValueError("adopt_head needs the store's Redis")
        with self._db.reading() as conn:
            report = verify_store(conn, self._key, [], outside=False)
        if not report.ok:
            raise IntegrityError(
                f"the chain does not verify ({report.problems_total} problem(s): "
                f"{report.summary()}); run `feedbackguard store verify`"
            )
        head = report.head
        return head, self.outside.adopt(head, actor, note)


def _of_accounts(conn: sa.Connection, account_ids: Sequence[str]) -> set[EventKey]:
    """The stored events of `account_ids`, in every namespace."""
    found: set[EventKey] = set()
    for chunk in chunks(list(account_ids), IN_CLAUSE_CHUNK):
        query = sa.select(items.c.namespace, items.c.event_id).where(items.c.account_id.in_(chunk))
        found.update((namespace, event_id) for namespace, event_id in conn.execute(query))
    return found


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
