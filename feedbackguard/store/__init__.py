"""The retraining store: append-only, signed, versioned by watermarks (docs/architecture.md).

Three tables, written only through this module:

* `fg_items` — one row per admitted or moderator-approved event: the event JSON, its
  decision trail, an increasing row id (the sequence) and an HMAC signature. Rows are
  never updated or deleted. `admit` is idempotent on `event_id` (unique constraint,
  `INSERT .. ON CONFLICT DO NOTHING`), so a batch re-written after a crash inserts
  nothing twice.
* `fg_tombstones` — quarantine / restore entries, signed; for one event the latest
  entry wins. They are how an item leaves (or comes back to) the training data
  without the row ever changing.
* `fg_versions` — dataset versions. Version V is a watermark: every row with
  `id <= watermark(V)`, minus the events whose latest tombstone up to V is a
  quarantine. Each version also records signed counts and a keyed digest of the set
  of event ids it contains, so `verify` notices rows deleted or renumbered under an
  existing version, not only rows altered.

Concurrency: on SQLite (WAL, busy timeout) every write transaction starts with
`BEGIN IMMEDIATE`, so writers queue instead of failing half-way. On PostgreSQL
`admit` holds a shared advisory lock and version-creating operations an exclusive
one, so a version's watermark never skips over a row whose transaction was still in
flight (row ids come from a sequence and may commit out of order).

Row ids are not part of a row's signature (they are assigned by the database during
the insert); the version digests cover them instead. Rows appended after the latest
version are covered only by their own signatures until the next version.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy.dialects import postgresql, sqlite

from feedbackguard.events import MAX_ID_CHARS, FeedbackEvent
from feedbackguard.pipeline.decide import Decision
from feedbackguard.settings import Settings
from feedbackguard.store import signing

# --- tunables ---------------------------------------------------------------------------

STORE_FILE_NAME = "store.db"
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's write lock
STREAM_BATCH = 1000  # rows fetched per round trip when exporting / verifying
IN_CLAUSE_CHUNK = 500  # ids per `IN (...)` when resolving quarantine targets
PROGRESS_EVERY = 1000  # export progress callback cadence, in rows
MAX_REPORTED_PROBLEMS = 1000  # verify lists at most this many (it counts all)
HASH_CHUNK_BYTES = 1 << 20
DIGEST_MODULUS = 1 << 256  # set digests are sums of keyed hashes modulo this
# One advisory lock key for every feedbackguard store in a PostgreSQL database.
PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"feedbackguard.store").digest()[:8], "big") >> 1
_WRITE = "feedbackguard_write"  # execution option marking a write transaction (SQLite)

# Domain tags of the signed records (see feedbackguard.store.signing).
ITEM_DOMAIN = "fg.store.item.v1"
TOMBSTONE_DOMAIN = "fg.store.tombstone.v1"
VERSION_DOMAIN = "fg.store.version.v1"
MANIFEST_DOMAIN = "fg.store.manifest.v1"
MEMBER_DOMAIN = b"fg.store.member.v1:"

Action = Literal["quarantine", "restore"]
ExportFormat = Literal["jsonl", "parquet"]
Row = Mapping[Any, Any]  # a result row mapping, or a row about to be inserted
Progress = Callable[[int, int], None]  # (items written so far, items expected)

_TRAIL = TypeAdapter(tuple[Decision, ...])
# JSON leaves these characters unescaped, but str.splitlines() and some JSONL readers
# break lines on them; exported lines escape them so one item is always one line.
_LINE_BREAKERS = (
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
)

# --- schema -----------------------------------------------------------------------------

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

# --- models at the edges ----------------------------------------------------------------


class StoreError(RuntimeError):
    """A store operation that cannot be carried out."""


class NotAdmittedError(ValueError):
    """`admit` was given an item whose decision trail does not end in `admitted`."""


class IntegrityError(StoreError):
    """Signed content does not verify: the store was changed outside feedbackguard."""


class Version(BaseModel):
    """A dataset version: a watermark over the rows, plus what it contains."""

    model_config = ConfigDict(frozen=True)

    version: int
    created_at: datetime
    watermark: int = Field(description="largest row id included")
    rows: int = Field(description="rows with id <= watermark")
    live: int = Field(description="rows minus quarantined: what an export contains")
    quarantined: int
    tombstones: int = Field(description="tombstones in effect up to this version")
    changed: int = Field(description="tombstones this version wrote")
    note: str
    actor: str


class StoredItem(BaseModel):
    """One row of the store, parsed."""

    model_config = ConfigDict(frozen=True)

    seq: int
    event: FeedbackEvent
    decisions: tuple[Decision, ...]
    admitted_at: datetime
    quarantined: bool = False


class ExportCaps(BaseModel):
    """Limits on how much one account weighs in an export (earliest items kept).

    A swarm that slipped through still cannot make one account's voice count fifty
    times: `per_account_item=1` keeps only an account's first feedback per item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_account: int | None = Field(None, gt=0)
    per_account_item: int | None = Field(None, gt=0)
    # No account contributes more than this share of any
    # (namespace, label) or (namespace, item) of the export (at least one item each).
    max_share: float | None = Field(None, gt=0, le=1)


class ManifestCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: dict[str, int]
    kind: dict[str, int]
    status: dict[str, int]
    decided_by: dict[str, int] = Field(description="'auto' or 'moderator'")


class Manifest(BaseModel):
    """What an export contains, signed: written next to the data as `<file>.manifest.json`."""

    model_config = ConfigDict(frozen=True)

    manifest_version: int = 1
    version: int
    created_at: datetime
    data_file: str
    format: ExportFormat
    sha256: str
    size_bytes: int
    items: int
    counts: ManifestCounts
    excluded: dict[str, int] = Field(description="quarantined / capped items left out")
    caps: ExportCaps | None = None
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """The canonical bytes the signature covers (everything but the signature)."""
        return signing.canonical(
            MANIFEST_DOMAIN, self.model_dump(mode="json", exclude={"signature"})
        )


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)

    table: Literal["items", "tombstones", "versions"]
    id: int
    event_id: str | None = None
    problem: str


class VerifyReport(BaseModel):
    """What `Store.verify` found; `ok` when nothing."""

    model_config = ConfigDict(frozen=True)

    items_checked: int
    tombstones_checked: int
    versions_checked: int
    problems_total: int
    problems: list[Problem] = Field(description=f"the first {MAX_REPORTED_PROBLEMS}")

    @property
    def ok(self) -> bool:
        return self.problems_total == 0


# --- canonical rows and signatures (plain functions) ------------------------------------


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted event in the form the store writes it: the columns it is found by,
    and the event and its decision trail as JSON (`admission`, `admission_from_json`)."""

    event_id: str
    namespace: str
    account_id: str
    item_id: str
    kind: str
    received_at: datetime
    decided_by: str
    event: str
    decisions: str


def admission(event: FeedbackEvent, trail: Sequence[Decision]) -> Admission:
    """An event and its decision trail, which must end in `admitted`, as stored."""
    return admission_from_json(event.to_json(), [d.model_dump(mode="json") for d in trail])


def admission_from_json(event_json: bytes, trail: Sequence[Mapping[str, Any]]) -> Admission:
    """An event and its decision trail (ending in `admitted`) in their JSON forms, as
    stored: what release moves from a Redis record (`ledger.RawRecord`) without building
    models, and what `admission` gives for models.

    `event_json` is `FeedbackEvent.to_json()` and goes in as it is; the trail's dicts
    (`Decision.model_dump(mode="json")`) are written with orjson, at less than half the
    cost of serialising models (docs/benchmarks.md).
    """
    event = orjson.loads(event_json)
    event_id = event["event_id"]
    _check_admissible(event_id, [(d["event_id"], d["status"]) for d in trail])
    return Admission(
        event_id=event_id,
        namespace=event["namespace"],
        account_id=event["account_id"],
        item_id=event["item_id"],
        kind=event["kind"],
        received_at=_aware(datetime.fromisoformat(event["received_at"])),
        decided_by=trail[-1]["decided_by"],
        event=event_json.decode(),
        decisions=orjson.dumps(trail).decode(),
    )


def item_row(
    key: bytes, event: FeedbackEvent, trail: Sequence[Decision], admitted_at: datetime
) -> dict[str, Any]:
    """The signed row for one admitted event (without its id, which the database assigns)."""
    return signed_rows(key, [admission(event, trail)], admitted_at)[0]


def signed_rows(
    key: bytes, batch: Sequence[Admission], admitted_at: datetime
) -> list[dict[str, Any]]:
    """The signed rows of admissions made at `admitted_at` (without their ids, which
    the database assigns). The admission time is put in canonical form once for all."""
    admitted_iso = signing.utc_iso(admitted_at)
    rows: list[dict[str, Any]] = []
    for item in batch:
        row: dict[str, Any] = {
            "event_id": item.event_id,
            "namespace": item.namespace,
            "account_id": item.account_id,
            "item_id": item.item_id,
            "kind": item.kind,
            "received_at": item.received_at,
            "admitted_at": admitted_at,
            "decided_by": item.decided_by,
            "event": item.event,
            "decisions": item.decisions,
        }
        row["signature"] = signing.sign(key, _item_message(row, admitted_iso))
        rows.append(row)
    return rows


def item_message(row: Row) -> bytes:
    """Canonical bytes of an item row's content."""
    return _item_message(row, signing.utc_iso(row["admitted_at"]))


def _item_message(row: Row, admitted_iso: str) -> bytes:
    """`item_message`, given the row's `admitted_at` already in canonical form."""
    return signing.canonical(
        ITEM_DOMAIN,
        row["event_id"],
        row["namespace"],
        row["account_id"],
        row["item_id"],
        row["kind"],
        signing.utc_iso(row["received_at"]),
        admitted_iso,
        row["decided_by"],
        row["event"],
        row["decisions"],
    )


def tombstone_message(row: Row) -> bytes:
    """Canonical bytes of a tombstone's content (its version binds it to one version)."""
    return signing.canonical(
        TOMBSTONE_DOMAIN,
        row["event_id"],
        row["action"],
        row["version"],
        row["reason"],
        row["actor"],
        signing.utc_iso(row["created_at"]),
    )


def version_message(row: Row) -> bytes:
    """Canonical bytes of a version's content."""
    return signing.canonical(
        VERSION_DOMAIN,
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


def parse_item(row: Row, quarantined: bool = False) -> StoredItem:
    """A stored row back as its event and decision trail."""
    return StoredItem(
        seq=row["id"],
        event=FeedbackEvent.model_validate_json(row["event"]),
        decisions=_TRAIL.validate_json(row["decisions"]),
        admitted_at=_aware(row["admitted_at"]),
        quarantined=quarantined,
    )


def member_hash(key: bytes, event_id: str) -> int:
    """One event id's keyed contribution to a version's set digest."""
    digest = signing.sign(key, MEMBER_DOMAIN + event_id.encode("utf-8", "surrogatepass"))
    return int(digest, 16)


EMPTY_MEMBERS = f"{0:064x}"


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_trail(decisions: Decision | Sequence[Decision]) -> tuple[Decision, ...]:
    return (decisions,) if isinstance(decisions, Decision) else tuple(decisions)


def _check_admissible(event_id: str, trail: Sequence[tuple[str, str]]) -> None:
    """docs/architecture.md invariant 2: only admitted or moderator-approved items
    reach the store. `trail` holds each decision's (event_id, status)."""
    if not trail:
        raise NotAdmittedError(f"event {event_id!r} has an empty decision trail")
    status = trail[-1][1]
    if status != "admitted":
        raise NotAdmittedError(f"event {event_id!r}: last decision is {status!r}, not admitted")
    if any(owner != event_id for owner, _ in trail):
        raise NotAdmittedError(f"event {event_id!r}: trail holds another event's decision")


def _decided_by_group(decided_by: str) -> str:
    return decided_by.split(":", 1)[0]


def _jsonl_line(row: Row) -> bytes:
    line = b'{"seq":%d,"event":%s,"decisions":%s}\n' % (
        row["id"],
        row["event"].encode(),
        row["decisions"].encode(),
    )
    for raw, escaped in _LINE_BREAKERS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def manifest_path(data_path: Path) -> Path:
    """Where the manifest of an export written to `data_path` lives."""
    return data_path.with_name(data_path.name + ".manifest.json")


def check_export(data_path: Path, key: bytes) -> list[str]:
    """Problems with an export on disk (empty when its manifest and data verify)."""
    manifest = Manifest.model_validate_json(manifest_path(data_path).read_bytes())
    problems = []
    if not signing.verify(key, manifest.signed_bytes(), manifest.signature):
        problems.append("manifest signature does not verify")
    if _sha256_file(data_path) != manifest.sha256:
        problems.append("data file SHA-256 differs from the manifest")
    return problems


# --- the store --------------------------------------------------------------------------


class Store:
    """The append-only retraining store. Create one per process (it owns an engine)."""

    def __init__(self, url: str, signing_key: bytes) -> None:
        self.url = sa.make_url(url)
        self._key = signing.check_key(signing_key)
        self._pid = os.getpid()
        self._engine = _create_engine(self.url)
        self._is_pg = self._engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._is_pg else sqlite.insert
        with self._writing(exclusive=True) as conn:
            metadata.create_all(conn)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store of a deployment: `store_url` (or SQLite under `home`) and its key
        (`signing_key`, or one generated once into `<home>/signing.key`)."""
        url = settings.store_url
        if url is None:
            settings.home.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{(settings.home / STORE_FILE_NAME).resolve()}"
        if settings.signing_key is not None:
            key = settings.signing_key.get_secret_value().encode()
        else:
            key = signing.load_or_create_key(settings.home / signing.KEY_FILE_NAME)
        return cls(url, key)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections ---------------------------------------------------------------------

    def _engine_here(self) -> sa.Engine:
        """The engine, made safe after a fork: a child never reuses its parent's sockets."""
        if os.getpid() != self._pid:
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    @contextmanager
    def _writing(self, exclusive: bool) -> Iterator[sa.Connection]:
        """A write transaction. `exclusive` ones (versions, schema) wait for in-flight
        admits on PostgreSQL and keep new ones out until they commit."""
        with self._engine_here().connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                if self._is_pg:
                    lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
                    conn.execute(sa.select(getattr(sa.func, lock)(PG_LOCK_KEY)))
                yield conn

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """A read transaction: one consistent snapshot on SQLite; never blocks writers."""
        with self._engine_here().connect() as conn:
            if self._is_pg:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

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
        stmt = self._insert(items).on_conflict_do_nothing(index_elements=[items.c.event_id])
        with self._writing(exclusive=False) as conn:
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
            if not self._is_pg:
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
        if self._is_pg:
            array = sa.bindparam("event_ids", list(event_ids), type_=postgresql.ARRAY(sa.Text))
            yield items.c.event_id == sa.any_(array)
            return
        for chunk in _chunks(event_ids, IN_CLAUSE_CHUNK):
            yield items.c.event_id.in_(chunk)

    def new_version(self, note: str = "", actor: str = "system") -> Version:
        """Mark the rows appended so far as a new dataset version."""
        with self._writing(exclusive=True) as conn:
            return self._create_version(conn, note, actor, changes=[])

    def snapshot(self, note: str = "export", actor: str = "system") -> Version:
        """The latest version if it already holds every row, else a new version."""
        with self._writing(exclusive=True) as conn:
            latest = _latest_version_row(conn)
            top = conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0
            if latest is not None and latest["watermark"] == top:
                return _version_model(latest)
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
        with self._writing(exclusive=True) as conn:
            targets: set[str] = set()
            for chunk in _chunks(list(event_ids or ()), IN_CLAUSE_CHUNK):
                query = sa.select(items.c.event_id).where(items.c.event_id.in_(chunk))
                targets.update(conn.execute(query).scalars())
            for chunk in _chunks(list(account_ids or ()), IN_CLAUSE_CHUNK):
                query = sa.select(items.c.event_id).where(items.c.account_id.in_(chunk))
                targets.update(conn.execute(query).scalars())
            state = _current_actions(conn, sorted(targets))
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
        latest = _latest_version_row(conn)
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
        return _version_model(row)

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        """Rows appended so far (quarantined ones included: rows are never removed)."""
        with self._reading() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()

    def get(self, event_id: str) -> StoredItem | None:
        """One stored item by event_id, with its current quarantine state."""
        with self._reading() as conn:
            row = conn.execute(sa.select(items).where(items.c.event_id == event_id)).first()
            if row is None:
                return None
            state = _current_actions(conn, [event_id]).get(event_id)
        return parse_item(row._mapping, quarantined=state == "quarantine")

    def versions(self) -> list[Version]:
        """Every dataset version, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(sa.select(versions_table).order_by(versions_table.c.version))
            return [_version_model(r._mapping) for r in rows]

    def version(self, number: int) -> Version:
        """One version; `StoreError` when there is no such version."""
        with self._reading() as conn:
            return _version_model(_version_row(conn, number))

    def iter_rows(self, version: int | None = None) -> Iterator[StoredItem]:
        """The live items of `version` (or of the store as it is now), oldest first."""
        with self._reading() as conn:
            if version is None:
                query = _live_query(None, None)
            else:
                row = _version_row(conn, version)
                query = _live_query(row["watermark"], version)
            for row in _stream(conn, query):
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
        path = Path(path)
        writer = _open_writer(path, fmt)  # fails early when pyarrow is missing
        try:
            chosen = self.snapshot(actor=actor) if version is None else self.version(version)
            counts: dict[str, Counter[str]] = {
                name: Counter() for name in ("namespace", "kind", "status", "decided_by")
            }
            capped = 0
            per_account: Counter[str] = Counter()
            per_account_item: Counter[tuple[str, str]] = Counter()
            written = 0
            shared = 0
            with self._reading() as conn:
                self._check_tombstones(conn, chosen.version)
                query = _live_query(chosen.watermark, chosen.version)
                over_share = _share_cap(conn, query, caps)  # the policy share per account
                for row in _stream(conn, query):
                    if not signing.verify(self._key, item_message(row), row["signature"]):
                        raise IntegrityError(
                            f"row {row['id']} does not verify; run `feedbackguard store verify`"
                        )
                    if caps is not None and _over_cap(caps, row, per_account, per_account_item):
                        capped += 1
                        continue
                    if over_share is not None and over_share(row):
                        shared += 1
                        continue
                    writer.write(row)
                    written += 1
                    counts["namespace"][row["namespace"]] += 1
                    counts["kind"][row["kind"]] += 1
                    counts["status"]["admitted"] += 1
                    counts["decided_by"][_decided_by_group(row["decided_by"])] += 1
                    if progress is not None and written % PROGRESS_EVERY == 0:
                        progress(written, chosen.live)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        if progress is not None:
            progress(written, chosen.live)
        manifest = Manifest(
            version=chosen.version,
            created_at=datetime.now(UTC),
            data_file=path.name,
            format=fmt,
            sha256=_sha256_file(path),
            size_bytes=path.stat().st_size,
            items=written,
            counts=ManifestCounts(**{k: dict(sorted(v.items())) for k, v in counts.items()}),
            excluded={"quarantined": chosen.quarantined, "capped": capped, "over_share": shared},
            caps=caps,
        )
        manifest = manifest.model_copy(
            update={"signature": signing.sign(self._key, manifest.signed_bytes())}
        )
        target = manifest_path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(
            orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
        )
        partial.replace(target)
        return manifest

    def _check_tombstones(self, conn: sa.Connection, version: int) -> None:
        query = sa.select(tombstones).where(tombstones.c.version <= version)
        for row in _stream(conn, query):
            if not signing.verify(self._key, tombstone_message(row), row["signature"]):
                raise IntegrityError(
                    f"tombstone {row['id']} does not verify; run `feedbackguard store verify`"
                )

    # -- verification --------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every signature, and every version's counts and set digest.

        Finds rows and tombstones altered or inserted outside feedbackguard (bad or
        missing signature), and rows deleted or renumbered under an existing version.
        """
        problems: list[Problem] = []
        total = 0

        def found(problem: Problem) -> None:
            nonlocal total
            total += 1
            if len(problems) < MAX_REPORTED_PROBLEMS:
                problems.append(problem)

        with self._reading() as conn:
            version_rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(versions_table).order_by(versions_table.c.version))
            ]
            for vrow in version_rows:
                if not signing.verify(self._key, version_message(vrow), vrow["signature"]):
                    found(Problem(table="versions", id=vrow["version"], problem=_bad(vrow)))
            # One pass over the items: signatures, and each row's count and digest
            # contribution to the first version whose watermark covers it (bucketed,
            # then summed up per version, so the pass costs O(rows log versions)).
            watermarks = [v["watermark"] for v in version_rows]
            bucket_rows = [0] * (len(version_rows) + 1)
            bucket_sums = [0] * (len(version_rows) + 1)
            n_items = 0
            for row in _stream(conn, sa.select(items).order_by(items.c.id)):
                n_items += 1
                if not signing.verify(self._key, item_message(row), row["signature"]):
                    found(
                        Problem(
                            table="items", id=row["id"], event_id=row["event_id"], problem=_bad(row)
                        )
                    )
                bucket = bisect.bisect_left(watermarks, row["id"])
                bucket_rows[bucket] += 1
                bucket_sums[bucket] += member_hash(self._key, row["event_id"])
            rows_below = list(itertools.accumulate(bucket_rows))
            sums = [total % DIGEST_MODULUS for total in itertools.accumulate(bucket_sums)]
            n_tombstones = 0
            per_version: Counter[int] = Counter()
            for row in _stream(conn, sa.select(tombstones).order_by(tombstones.c.id)):
                n_tombstones += 1
                per_version[row["version"]] += 1
                if not signing.verify(self._key, tombstone_message(row), row["signature"]):
                    found(
                        Problem(
                            table="tombstones",
                            id=row["id"],
                            event_id=row["event_id"],
                            problem=_bad(row),
                        )
                    )
            running = 0
            for index, vrow in enumerate(version_rows):
                running += per_version.get(vrow["version"], 0)
                if rows_below[index] != vrow["rows"] or f"{sums[index]:064x}" != vrow["members"]:
                    found(
                        Problem(
                            table="versions",
                            id=vrow["version"],
                            problem=(
                                f"holds {rows_below[index]} rows, signed for {vrow['rows']}, or "
                                "other ones: rows were deleted or renumbered outside feedbackguard"
                            ),
                        )
                    )
                if running != vrow["tombstones"]:
                    found(
                        Problem(
                            table="versions",
                            id=vrow["version"],
                            problem=(
                                f"{running} tombstones in effect, signed for {vrow['tombstones']}: "
                                "tombstones were deleted or moved outside feedbackguard"
                            ),
                        )
                    )
        return VerifyReport(
            items_checked=n_items,
            tombstones_checked=n_tombstones,
            versions_checked=len(version_rows),
            problems_total=total,
            problems=problems,
        )


# --- helpers ------------------------------------------------------------------------------


def _create_engine(url: sa.URL) -> sa.Engine:
    """An engine for this process. SQLite: WAL, a busy timeout, and explicit BEGINs
    (IMMEDIATE for writes) instead of pysqlite's implicit transactions."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
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


def _stream(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Row]:
    """Rows of `query` fetched `STREAM_BATCH` at a time (server-side cursor on PostgreSQL)."""
    result = conn.execute(query.execution_options(yield_per=STREAM_BATCH))
    try:
        yield from result.mappings()
    finally:
        result.close()


def _live_query(watermark: int | None, version: int | None) -> sa.Select[Any]:
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


def _current_actions(conn: sa.Connection, event_ids: Sequence[str]) -> dict[str, str]:
    """The latest tombstone action of each event that has one."""
    actions: dict[str, str] = {}
    for chunk in _chunks(event_ids, IN_CLAUSE_CHUNK):
        query = (
            sa.select(tombstones.c.event_id, tombstones.c.action)
            .where(tombstones.c.event_id.in_(chunk))
            .order_by(tombstones.c.id)
        )
        for event_id, action in conn.execute(query):
            actions[event_id] = action
    return actions


def _latest_version_row(conn: sa.Connection) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(versions_table).order_by(versions_table.c.version.desc()).limit(1)
    ).first()
    return None if row is None else dict(row._mapping)


def _version_row(conn: sa.Connection, number: int) -> Row:
    row = conn.execute(sa.select(versions_table).where(versions_table.c.version == number)).first()
    if row is None:
        raise StoreError(f"no dataset version {number}")
    return row._mapping


def _version_model(row: Row) -> Version:
    return Version(
        version=row["version"],
        created_at=_aware(row["created_at"]),
        watermark=row["watermark"],
        rows=row["rows"],
        live=row["rows"] - row["quarantined"],
        quarantined=row["quarantined"],
        tombstones=row["tombstones"],
        changed=row["changed"],
        note=row["note"],
        actor=row["actor"],
    )


def _bad(row: Row) -> str:
    if not row["signature"]:
        return "missing signature: written outside feedbackguard"
    return "bad signature: changed or written outside feedbackguard"


def _share_groups(row: Row) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """The (namespace, label) and (namespace, item) an exported row counts towards."""
    value = orjson.loads(row["event"])["value"]
    label = f"{type(value).__name__}:{value!r}"
    return ("label", row["namespace"], label), ("item", row["namespace"], row["item_id"])


def _share_cap(
    conn: sa.Connection, query: sa.Select[Any], caps: ExportCaps | None
) -> Callable[[Row], bool] | None:
    """With `caps.max_share`: a first pass counts each label's and item's rows; the
    returned test then refuses a row once its account holds `max_share` (at least one
    row) of its label or item, earliest rows kept."""
    if caps is None or caps.max_share is None:
        return None
    share = caps.max_share
    totals: Counter[tuple[str, str, str]] = Counter()
    for row in _stream(conn, query):
        totals.update(_share_groups(row))
    held: Counter[tuple[str, tuple[str, str, str]]] = Counter()

    def over(row: Row) -> bool:
        groups = _share_groups(row)
        account = row["account_id"]
        if any(held[(account, g)] >= max(1, int(share * totals[g])) for g in groups):
            return True
        held.update((account, g) for g in groups)
        return False

    return over


def _over_cap(
    caps: ExportCaps,
    row: Row,
    per_account: Counter[str],
    per_account_item: Counter[tuple[str, str]],
) -> bool:
    account = row["account_id"]
    pair = (account, row["item_id"])
    if caps.per_account is not None and per_account[account] >= caps.per_account:
        return True
    if caps.per_account_item is not None and per_account_item[pair] >= caps.per_account_item:
        return True
    per_account[account] += 1
    per_account_item[pair] += 1
    return False


class _Writer:
    """Writes export rows to `<path>.partial`; `finish` renames it into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")

    def write(self, row: Row) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.close()
        self.partial.replace(self.path)

    def abort(self) -> None:
        try:
            self.close()
        finally:
            self.partial.unlink(missing_ok=True)


class _JsonlWriter(_Writer):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._handle = self.partial.open("wb")

    def write(self, row: Row) -> None:
        self._handle.write(_jsonl_line(row))

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class _ParquetWriter(_Writer):
    """Columns: seq, the event's identifying fields, and the event / decisions as JSON."""

    COLUMNS = ("seq", "event_id", "namespace", "kind", "account_id", "item_id", "received_at")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
        pa = self._pa
        self._schema = pa.schema(
            [
                ("seq", pa.int64()),
                ("event_id", pa.string()),
                ("namespace", pa.string()),
                ("kind", pa.string()),
                ("account_id", pa.string()),
                ("item_id", pa.string()),
                ("received_at", pa.timestamp("us", tz="UTC")),
                ("event", pa.string()),
                ("decisions", pa.string()),
            ]
        )
        self._writer = pq.ParquetWriter(str(self.partial), self._schema)
        self._buffer: list[dict[str, Any]] = []
        self._closed = False

    def write(self, row: Row) -> None:
        self._buffer.append(
            {
                "seq": row["id"],
                "event_id": row["event_id"],
                "namespace": row["namespace"],
                "kind": row["kind"],
                "account_id": row["account_id"],
                "item_id": row["item_id"],
                "received_at": _aware(row["received_at"]),
                "event": row["event"],
                "decisions": row["decisions"],
            }
        )
        if len(self._buffer) >= STREAM_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            table = self._pa.Table.from_pylist(self._buffer, schema=self._schema)
            self._writer.write_table(table)
            self._buffer = []

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            self._writer.close()


def _open_writer(path: Path, fmt: ExportFormat) -> _Writer:
    if fmt == "jsonl":
        return _JsonlWriter(path)
    if fmt == "parquet":
        try:
            importlib.import_module("pyarrow.parquet")
        except ImportError as exc:
            raise StoreError(
                "Parquet export needs pyarrow: pip install 'feedbackguard[parquet]'"
            ) from exc
        return _ParquetWriter(path)
    raise ValueError(f"unknown export format {fmt!r} (jsonl or parquet)")
