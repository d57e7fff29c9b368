"""The retraining store, against real SQLite and (when configured) real PostgreSQL."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard.cli import main
from feedbackguard.decisions import FINAL_STATUSES, Decision, Status, json_time
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.reasons import Reason
from feedbackguard.settings import Settings
from feedbackguard.store import (
    ExportCaps,
    IntegrityError,
    Manifest,
    NotAdmittedError,
    Store,
    StoreKeyError,
    admission_from_json,
    check_export,
    keyid,
    manifest_path,
    signature_path,
    signing,
)
from feedbackguard.store.rows import (
    GENESIS,
    Head,
    item_message,
    item_row,
    link_message,
    parse_item,
    signed_rows,
)

MakeEvent = Callable[..., FeedbackEvent]
KEY = b"test-signing-key-0123456789abcdef"
NS = "default"  # make_event's namespace


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url, KEY, export_key=Ed25519PrivateKey.generate())
    yield s
    s.close()


@pytest.fixture
def raw(store_url: str, store: Store) -> Iterator[sa.Engine]:
    """A plain engine on the store's database: someone writing outside feedbackguard."""
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


def admitted(event: FeedbackEvent, by: str = "auto") -> tuple[FeedbackEvent, list[Decision]]:
    pending = Decision(event_id=event.event_id, status="pending", risk=0.1, policy_version=1)
    final = pending.model_copy(update={"status": "admitted", "decided_by": by})
    return event, [pending, final]


def event_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in path.read_bytes().splitlines()]


def public_key(store: Store) -> Ed25519PublicKey:
    assert store.export_public_key is not None
    return store.export_public_key


def items_table(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM fg_items ORDER BY id"))]


# --- admit ------------------------------------------------------------------------------


def test_admit_is_idempotent_on_event_id(store: Store, make_event: MakeEvent) -> None:
    events = [make_event(at=i) for i in range(20)]
    assert store.admit([admitted(e) for e in events[:10]]) == 10
    assert store.admit([admitted(e) for e in events[:10]]) == 0  # the batch re-written
    assert store.admit([admitted(e) for e in events[5:]]) == 10
    assert store.count() == 20


def test_admit_counts_a_duplicate_within_one_batch_once(
    store: Store, make_event: MakeEvent
) -> None:
    event = make_event()
    assert store.admit([admitted(event), admitted(event)]) == 1
    assert store.count() == 1


def test_admit_refuses_a_batch_holding_an_item_not_admitted(
    store: Store, make_event: MakeEvent
) -> None:
    good, bad = make_event(), make_event()
    pending = Decision(event_id=bad.event_id, status="pending", risk=0.1, policy_version=1)
    with pytest.raises(NotAdmittedError):
        store.admit([admitted(good), (bad, [pending])])
    assert store.count() == 0


def test_admit_keeps_the_event_and_its_decision_trail(store: Store, make_event: MakeEvent) -> None:
    event, trail = admitted(make_event(value=4.5, kind="rating"), by="moderator:alice")
    store.admit([(event, trail)])
    stored = store.get(NS, event.event_id)
    assert stored is not None
    assert stored.event == event
    assert stored.decisions == tuple(trail)
    assert store.get(NS, "no-such-event") is None


def test_an_unusual_event_round_trips_through_the_database(store: Store) -> None:
    event = FeedbackEvent.model_validate(
        {
            "event_id": "ünï\u2028cødé-☃",
            "kind": "correction",
            "account_id": "acct\x1b[31m",
            "item_id": "item",
            "value": 1e-300,
            "payload": {"text": "line\nbreak \u2029 'quote' \"dq\"", "features": [0.1, -2.5e10]},
            "model_output": {"label": True, "confidence": 0.999999},
            "received_at": datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        }
    )
    store.admit([admitted(event)])
    stored = store.get(NS, event.event_id)
    assert stored is not None
    assert stored.event == event
    assert store.verify().ok


def test_nothing_but_admit_writes_rows(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(10)]
    store.admit([admitted(e) for e in events])
    before = items_table(raw)
    store.new_version("v", "test")
    store.quarantine([(NS, events[0].event_id)], reason="sybil", actor="test")
    store.quarantine(account_ids=[events[1].account_id], reason="sybil", actor="test")
    store.restore([(NS, events[0].event_id)], reason="false alarm", actor="test")
    store.export(tmp_path / "out.jsonl")
    store.verify()
    store.versions()
    list(store.iter_rows())
    assert items_table(raw) == before


@pytest.mark.slow
def test_several_processes_admit_into_one_store(store_url: str, make_event: MakeEvent) -> None:
    batches = [
        [make_event(at=i).to_json() for i in range(w * 200, (w + 1) * 200)] for w in range(3)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(batches)) as pool:
        counts = pool.starmap(_admit_in_a_worker, [(store_url, b) for b in batches + batches])
    assert sum(counts) == 600
    with Store(store_url, KEY) as s:
        assert s.count() == 600


def _admit_in_a_worker(url: str, raw_events: Sequence[bytes]) -> int:
    with Store(url, KEY) as s:
        return s.admit([admitted(FeedbackEvent.from_json(r)) for r in raw_events])


# --- versions, quarantine, export --------------------------------------------------------


def test_a_version_holds_only_rows_admitted_before_it(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    first = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in first])
    v1 = store.new_version("first", "test")
    store.admit([admitted(make_event(at=10 + i)) for i in range(4)])
    store.export(tmp_path / "v1.jsonl", version=v1.version)
    assert event_ids(tmp_path / "v1.jsonl") == [e.event_id for e in first]
    assert [v.version for v in store.versions()] == [1]
    assert store.snapshot().live == 7  # the current state becomes version 2


def test_quarantine_hides_items_from_the_next_version_not_from_older_ones(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(5)]
    store.admit([admitted(e) for e in events])
    v1 = store.new_version("before", "test")
    v2 = store.quarantine([(NS, events[1].event_id)], reason="sybil.cluster", actor="analysis")
    assert (v2.version, v2.live, v2.quarantined) == (v1.version + 1, 4, 1)
    store.export(tmp_path / "old.jsonl", version=v1.version)
    store.export(tmp_path / "new.jsonl", version=v2.version)
    assert event_ids(tmp_path / "old.jsonl") == [e.event_id for e in events]
    assert events[1].event_id not in event_ids(tmp_path / "new.jsonl")
    stored = store.get(NS, events[1].event_id)
    assert stored is not None
    assert stored.quarantined


def test_quarantine_by_account_covers_the_accounts_items(
    store: Store, make_event: MakeEvent
) -> None:
    sybil = [make_event(at=i, account_id="sybil") for i in range(3)]
    honest = [make_event(at=10 + i) for i in range(3)]
    store.admit([admitted(e) for e in sybil + honest])
    version = store.quarantine(account_ids=["sybil"], reason="sybil.cluster", actor="analysis")
    assert version.changed == 3
    assert [i.event.event_id for i in store.iter_rows()] == [e.event_id for e in honest]


def test_restore_brings_quarantined_items_back(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in events])
    target = [(NS, events[0].event_id)]
    store.quarantine(target, reason="suspected", actor="analysis")
    restored = store.restore(target, reason="false alarm", actor="moderator:bo")
    assert (restored.live, restored.quarantined, restored.changed) == (3, 0, 1)
    store.export(tmp_path / "out.jsonl", version=restored.version)
    assert event_ids(tmp_path / "out.jsonl") == [e.event_id for e in events]


def test_export_manifest_sha256_matches_the_file(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i, kind=k)) for i, k in enumerate(["label", "vote"] * 3)])
    path = tmp_path / "out.jsonl"
    manifest = store.export(path)
    on_disk = Manifest.model_validate_json(manifest_path(path).read_bytes())
    assert on_disk == manifest
    assert on_disk.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert on_disk.counts.kind == {"label": 3, "vote": 3}
    assert check_export(path, public_key(store)) == []


def test_export_reports_progress(store: Store, make_event: MakeEvent, tmp_path: Path) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(5)])
    seen: list[tuple[int, int]] = []
    store.export(tmp_path / "out.jsonl", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5, 5)


def test_exported_lines_escape_unicode_line_separators(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(value="a\u2028b\u2029c\x85d"))])
    path = tmp_path / "out.jsonl"
    store.export(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert orjson.loads(lines[0])["label"] == "a\u2028b\u2029c\x85d"


def test_export_caps_keep_an_accounts_first_feedback_per_item(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    repeats = [make_event(at=i, account_id="loud", item_id="x") for i in range(4)]
    store.admit([admitted(e) for e in repeats])
    path = tmp_path / "out.jsonl"
    manifest = store.export(path, caps=ExportCaps(per_account_item=1))
    assert event_ids(path) == [repeats[0].event_id]
    assert manifest.excluded["capped"] == 3


def test_export_to_parquet(store: Store, make_event: MakeEvent, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    events = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in events])
    path = tmp_path / "out.parquet"
    manifest = store.export(path)
    table = pq.read_table(path)
    assert table.column("event_id").to_pylist() == [e.event_id for e in events]
    assert manifest.items == 3
    assert check_export(path, public_key(store)) == []


def test_export_refuses_a_tampered_row(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event())])
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE fg_items SET event = replace(event, 'spam', 'ham')"))
    with pytest.raises(IntegrityError):
        store.export(tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


# --- verify -------------------------------------------------------------------------------


def test_verify_passes_on_an_untouched_store(store: Store, make_event: MakeEvent) -> None:
    events = [make_event(at=i) for i in range(5)]
    store.admit([admitted(e) for e in events])
    store.quarantine([(NS, events[0].event_id)], reason="r", actor="a")
    store.admit([admitted(make_event(at=9))])
    report = store.verify()
    assert report.ok
    assert (report.items_checked, report.tombstones_checked, report.versions_checked) == (6, 1, 1)


def test_verify_catches_a_row_changed_by_raw_sql(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in events])
    with raw.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE fg_items SET event = replace(event, 'spam', 'ham') WHERE event_id = :e"
            ),
            {"e": events[1].event_id},
        )
    report = store.verify()
    assert [(p.table, p.event_id) for p in report.problems] == [("items", events[1].event_id)]


def test_verify_catches_a_row_inserted_by_raw_sql(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    store.admit([admitted(make_event())])
    with raw.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO fg_items (id, position, event_id, namespace, account_id, item_id,"
                " kind, received_at, admitted_at, decided_by, event, decisions)"
                " SELECT id + 1, position + 1, 'forged', namespace, account_id, item_id, kind,"
                " received_at, admitted_at, decided_by, event, decisions FROM fg_items"
            )
        )
    report = store.verify()
    assert [(p.table, p.event_id) for p in report.problems] == [("items", "forged")]
    assert "missing signature" in report.problems[0].problem


def test_verify_catches_a_tampered_tombstone(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    event = make_event()
    store.admit([admitted(event)])
    store.quarantine([(NS, event.event_id)], reason="sybil", actor="analysis")
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE fg_tombstones SET action = 'restore'"))
    report = store.verify()
    assert [(p.table, p.event_id) for p in report.problems] == [
        ("tombstones", event.event_id),
        ("versions", None),  # its quarantined count no longer adds up
    ]


def test_verify_catches_a_row_deleted_under_a_version(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in events])
    version = store.new_version("v", "test")
    with raw.begin() as conn:
        conn.execute(sa.text("DELETE FROM fg_items WHERE event_id = :e"), {"e": events[0].event_id})
    report = store.verify()
    assert ("versions", version.version) in [(p.table, p.id) for p in report.problems]
    assert ("chain", 1) in [(p.table, p.id) for p in report.problems]


# --- signing key and settings --------------------------------------------------------------


def test_from_settings_generates_one_private_signing_key_and_reuses_it(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    settings = Settings(home=tmp_path / "home")
    with Store.from_settings(settings, create=True) as s:
        s.admit([admitted(make_event())])
    key_file = tmp_path / "home" / signing.KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == signing.KEY_FILE_MODE
    with Store.from_settings(settings) as s:
        assert s.verify().ok
    assert (tmp_path / "home" / "store.db").exists()


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    store_url: str, tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> dict[str, str]:
    return {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
    }


@contextmanager
def cli_store(env: dict[str, str]) -> Iterator[Store]:
    """The CLI's store, keeping its head in the CLI's Redis (made when missing)."""
    r = redis.Redis.from_url(env["FEEDBACKGUARD_REDIS_URL"])
    settings = Settings(
        store_url=env["FEEDBACKGUARD_STORE_URL"], home=Path(env["FEEDBACKGUARD_HOME"])
    )
    try:
        with Store.from_settings(settings, r, create=True) as s:
            yield s
    finally:
        r.close()


def key_settings(store_url: str, home: Path, **values: Any) -> Settings:
    return Settings(store_url=store_url, home=home, **values)


def test_store_records_the_id_of_its_key_and_never_the_key(store_url: str) -> None:
    with Store(store_url, KEY) as s:
        assert s.key_id == keyid.key_id(KEY)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        recorded = dict(conn.execute(sa.text("SELECT name, value FROM fg_meta")).all())
    engine.dispose()
    assert recorded == {"key_id": keyid.key_id(KEY)}
    assert KEY.decode() not in recorded["key_id"]


def test_from_settings_refuses_a_store_with_rows_when_the_key_file_is_missing(
    store_url: str, tmp_path: Path, make_event: MakeEvent
) -> None:
    home = tmp_path / "home"
    with Store.from_settings(key_settings(store_url, home), create=True) as s:
        s.admit([admitted(make_event())])
    (home / signing.KEY_FILE_NAME).unlink()
    with pytest.raises(StoreKeyError) as caught:
        Store.from_settings(key_settings(store_url, home), create=True)
    assert "FEEDBACKGUARD_HOME" in str(caught.value)
    assert str((home / signing.KEY_FILE_NAME).resolve()) in str(caught.value)
    assert not (home / signing.KEY_FILE_NAME).exists()  # no new key was made


def test_from_settings_refuses_a_store_with_rows_and_no_recorded_id_when_the_key_is_missing(
    store_url: str, tmp_path: Path, make_event: MakeEvent
) -> None:
    home = tmp_path / "home"
    with Store.from_settings(key_settings(store_url, home), create=True) as s:
        s.admit([admitted(make_event())])
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # a store made before the key id was recorded
        conn.execute(sa.text("DROP TABLE fg_meta"))
    engine.dispose()
    (home / signing.KEY_FILE_NAME).unlink()
    with pytest.raises(StoreKeyError, match="is missing"):
        Store.from_settings(key_settings(store_url, home), create=True)


def test_from_settings_refuses_an_empty_store_whose_key_id_is_recorded(
    store_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    Store.from_settings(key_settings(store_url, home), create=True).close()
    (home / signing.KEY_FILE_NAME).unlink()
    with pytest.raises(StoreKeyError, match="is missing"):
        Store.from_settings(key_settings(store_url, home), create=True)


def test_from_settings_refuses_a_key_file_with_another_key(
    store_url: str, tmp_path: Path, make_event: MakeEvent
) -> None:
    home = tmp_path / "home"
    with Store.from_settings(key_settings(store_url, home), create=True) as s:
        s.admit([admitted(make_event())])
        first = s.key_id
    (home / signing.KEY_FILE_NAME).write_text("another-key-0123456789abcdef\n")
    with pytest.raises(StoreKeyError, match=f"signed with key id {first}"):
        Store.from_settings(key_settings(store_url, home), create=True)


def test_from_settings_refuses_a_signing_key_setting_with_another_key(
    store_url: str, tmp_path: Path
) -> None:
    Store(store_url, KEY).close()
    other = key_settings(store_url, tmp_path / "home", signing_key="another-key-0123456789abcdef")
    with pytest.raises(StoreKeyError, match="FEEDBACKGUARD_SIGNING_KEY"):
        Store.from_settings(other)


def test_a_store_made_before_the_metadata_table_gets_it_with_its_key_id(
    store_url: str, make_event: MakeEvent
) -> None:
    with Store(store_url, KEY) as s:
        s.admit([admitted(make_event())])
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE fg_meta"))
    engine.dispose()
    with Store(store_url, KEY) as s:
        assert s.key_id == keyid.key_id(KEY)
        assert s.verify().ok
    with Store(store_url, b"another-key-0123456789abcdef") as s:
        assert s.key_id == keyid.key_id(KEY)  # recorded once, by the first opener


def test_cli_store_init_creates_the_key_and_a_second_init_keeps_it(
    cli_env: dict[str, str], make_event: MakeEvent
) -> None:
    runner = CliRunner(env=cli_env)
    result = runner.invoke(main, ["store", "init"])
    assert result.exit_code == 0, result.output
    key_file = Path(cli_env["FEEDBACKGUARD_HOME"]) / signing.KEY_FILE_NAME
    key = key_file.read_bytes()
    assert keyid.key_id(key.strip()) in result.output
    with cli_store(cli_env) as s:
        s.admit([admitted(make_event())])
    again = runner.invoke(main, ["store", "init"])
    assert again.exit_code == 0, again.output
    assert "already initialised" in again.output
    assert key_file.read_bytes() == key


def test_cli_refuses_a_missing_key_file_in_one_line(
    cli_env: dict[str, str], make_event: MakeEvent
) -> None:
    with cli_store(cli_env) as s:
        s.admit([admitted(make_event())])
    (Path(cli_env["FEEDBACKGUARD_HOME"]) / signing.KEY_FILE_NAME).unlink()
    result = CliRunner(env=cli_env).invoke(main, ["store", "init"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the signing key file ")
    assert "Traceback" not in result.output
    assert not (Path(cli_env["FEEDBACKGUARD_HOME"]) / signing.KEY_FILE_NAME).exists()


def test_cli_export_writes_the_data_and_its_manifest(
    cli_env: dict[str, str], make_event: MakeEvent, tmp_path: Path
) -> None:
    with cli_store(cli_env) as s:
        s.admit([admitted(make_event(at=i)) for i in range(4)])
    path = tmp_path / "data.jsonl"
    result = CliRunner(env=cli_env).invoke(main, ["store", "export", str(path)])
    assert result.exit_code == 0, result.output
    assert len(event_ids(path)) == 4
    with cli_store(cli_env) as s:
        assert check_export(path, public_key(s)) == []


def test_cli_versions_lists_versions_as_json(
    cli_env: dict[str, str], make_event: MakeEvent
) -> None:
    with cli_store(cli_env) as s:
        s.admit([admitted(make_event())])
        s.new_version("nightly", "cron")
    result = CliRunner(env=cli_env).invoke(main, ["store", "versions", "--json"])
    assert result.exit_code == 0, result.output
    assert [(v["version"], v["live"], v["note"]) for v in orjson.loads(result.output)] == [
        (1, 1, "nightly")
    ]
    table = CliRunner(env=cli_env).invoke(main, ["store", "versions"])
    assert "nightly" in table.output


def test_cli_verify_exits_1_listing_tampered_rows(
    cli_env: dict[str, str], make_event: MakeEvent
) -> None:
    event = make_event()
    with cli_store(cli_env) as s:
        s.admit([admitted(event)])
    runner = CliRunner(env=cli_env)
    assert runner.invoke(main, ["store", "verify"]).exit_code == 0
    engine = sa.create_engine(cli_env["FEEDBACKGUARD_STORE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE fg_items SET account_id = 'someone-else'"))
    engine.dispose()
    result = runner.invoke(main, ["store", "verify"])
    assert result.exit_code == 1
    assert event.event_id in result.output


# --- canonical serialisation (property) -------------------------------------------------------

_ids = st.text(min_size=1, max_size=30).map(str.strip).filter(bool)
_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)
_events = st.builds(
    FeedbackEvent,
    event_id=_ids,
    kind=st.sampled_from(["label", "correction", "rating", "report", "vote"]),
    account_id=_ids,
    item_id=_ids,
    value=_values,
    model_output=st.none()
    | st.fixed_dictionaries({"label": _values, "confidence": st.floats(0.0, 1.0)}),
    payload=st.none()
    | st.fixed_dictionaries(
        {
            "text": st.text(max_size=60),
            "features": st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5),
        }
    ),
    ip=st.none() | st.text(max_size=20),
    received_at=_datetimes,
)


@given(event=_events, risk=st.floats(0.0, 1.0), admitted_at=_datetimes)
def test_any_event_round_trips_and_its_signature_verifies(
    event: FeedbackEvent, risk: float, admitted_at: datetime
) -> None:
    reason = Reason(code="outlier", detail="x", score=risk)
    trail = [
        Decision(
            event_id=event.event_id,
            status="admitted",
            risk=risk,
            reasons=(reason,),
            policy_version=3,
        )
    ]
    row = item_row(KEY, event, trail, admitted_at)

    def signed(content: Mapping[str, Any]) -> bool:
        return signing.verify(
            KEY, link_message(1, GENESIS, item_message(content)), row["signature"]
        )

    assert signed(row)
    parsed = parse_item({**row, "id": 1})
    assert parsed.event == event
    assert parsed.decisions == tuple(trail)
    # The same content read back naive (as SQLite returns it) still verifies.
    naive = {
        k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v
        for k, v in row.items()
    }
    assert signed(naive)
    assert not signed({**row, "item_id": row["item_id"] + "x"})


@given(
    event=_events,
    risks=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    detail=st.text(max_size=40),
    decided_at=_datetimes,
    admitted_at=_datetimes,
)
def test_release_from_json_stores_what_the_models_would(
    event: FeedbackEvent,
    risks: list[float],
    detail: str,
    decided_at: datetime,
    admitted_at: datetime,
) -> None:
    trail = [
        Decision(
            event_id=event.event_id,
            status="pending",
            risk=risk,
            reasons=(Reason(code="outlier", detail=detail, score=risk),),
            policy_version=i,
            decided_at=decided_at,
        )
        for i, risk in enumerate(risks)
    ]
    raw = ledger.encode_record(event.to_json(), [d.model_dump(mode="json") for d in trail])
    final = trail[-1].model_copy(update={"status": "admitted", "decided_at": admitted_at})
    by_models = ledger.Record(event, (*trail, final))

    record = ledger.split_record(raw)
    record = record.then(
        {**record.trail[-1], "status": "admitted", "decided_at": json_time(admitted_at)}
    )
    admitted = admission_from_json(record.event_json, record.trail)
    (row,), _ = signed_rows(KEY, [admitted], admitted_at, first_id=1, head=Head())

    assert record.to_json() == by_models.to_json()
    assert row == item_row(KEY, event, by_models.trail, admitted_at)


@given(
    event=_events,
    statuses=st.lists(st.sampled_from(sorted(FINAL_STATUSES | {"pending", "review"})), min_size=1),
    detail=st.text(max_size=40),
)
def test_last_status_reads_the_last_decisions_status_whatever_the_strings_hold(
    event: FeedbackEvent, statuses: list[Status], detail: str
) -> None:
    trail = [
        Decision(
            event_id=event.event_id,
            status=status,
            risk=0.5,
            reasons=(Reason(code="outlier", detail=f'"status":"admitted"{detail}', score=0.5),),
            policy_version=1,
        ).model_dump(mode="json")
        for status in statuses
    ]
    raw = ledger.encode_record(event.to_json(), trail)
    assert ledger.last_status(raw) == ledger.split_record(raw).status == statuses[-1]


# --- files at rest: private whatever the umask ------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_the_sqlite_store_file_is_created_owner_only(tmp_path: Path, make_event: MakeEvent) -> None:
    path = tmp_path / "fresh" / "store.db"
    s = Store(f"sqlite:///{path}", KEY)
    try:
        s.admit([admitted(make_event())])
        files = [p for p in path.parent.iterdir() if p.name.startswith("store.db")]
        assert path in files
        for found in files:
            assert _mode(found) == 0o600, found
        assert _mode(path.parent) == 0o700
    finally:
        s.close()


@pytest.mark.usefixtures("umask_022")
def test_the_embedded_redis_keeps_its_data_owner_only(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        assert _mode(server.dir) == 0o700
        written = [p for p in server.dir.rglob("*") if p != server.socket]
        assert any("appendonly" in p.name for p in written)
        for found in written:
            assert _mode(found) == (0o700 if found.is_dir() else 0o600), found
    finally:
        server.stop()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_never_follows_a_symlink_planted_at_a_temporary_name(
    store: Store, make_event: MakeEvent, tmp_path: Path, fmt: str
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    shared = tmp_path / "shared"
    shared.mkdir()
    outside = tmp_path / "victim"
    outside.mkdir()
    path = shared / f"out.{fmt}"
    victims = []
    for name in (path.name, manifest_path(path).name):
        victim = outside / name
        victim.write_bytes(b"precious")
        (shared / f"{name}.partial").symlink_to(victim)
        victims.append(victim)
    manifest = store.export(path)
    assert manifest.items == 3
    assert check_export(path, public_key(store)) == []
    for victim in victims:
        assert victim.read_bytes() == b"precious"
    assert not path.is_symlink()
    assert sorted(p.name for p in shared.iterdir() if not p.is_symlink()) == sorted(
        [path.name, manifest_path(path).name, signature_path(path).name]
    )
