"""The store's hash chain: every way of changing, removing, reordering or cutting off
entries outside feedbackguard that `store verify` once missed is found, and export
refuses such a store; event ids are unique per namespace; only the commands that
create a home make a signing key. Against real SQLite, real PostgreSQL (when
configured) and a real Redis."""

# ruff: noqa: S608 (the SQL built here names only the test's own tables and columns)

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from feedbackguard import inbox_writer, keys
from feedbackguard.checks.base import AnalysisContext, Reason, Verdicts
from feedbackguard.cli import main
from feedbackguard.decisions import Decision
from feedbackguard.embedded import mark_home
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.review.moderation import moderate, undo
from feedbackguard.settings import Settings
from feedbackguard.store import (
    IntegrityError,
    LegacyStoreError,
    Manifest,
    Store,
    StoreKeyError,
    manifest_path,
    publickey,
    signing,
)
from feedbackguard.store.head import parse

MakeEvent = Callable[..., FeedbackEvent]
KEY = b"chain-test-key-0123456789abcdef!"
NS = "default"


@pytest.fixture
def store(store_url: str, r: redis.Redis[bytes]) -> Iterator[Store]:
    """A store keeping its chain head in the test Redis."""
    s = Store(store_url, KEY, r, export_key=Ed25519PrivateKey.generate())
    yield s
    s.close()


@pytest.fixture
def raw(store_url: str, store: Store) -> Iterator[sa.Engine]:
    """A plain engine on the store's database: someone writing outside feedbackguard."""
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


def admitted(event: FeedbackEvent) -> tuple[FeedbackEvent, list[Decision]]:
    return event, [Decision(event_id=event.event_id, status="admitted", risk=0.1, policy_version=1)]


def sql(engine: sa.Engine, *statements: str, **params: Any) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), params)


def exported_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in path.read_bytes().splitlines()]


def refuses_to_export(store: Store, path: Path) -> str:
    """The export's error; asserts nothing was written."""
    with pytest.raises(IntegrityError) as caught:
        store.export(path)
    assert not path.exists()
    assert not manifest_path(path).exists()
    return str(caught.value)


# --- the tamperings verify once missed ----------------------------------------------------


def test_deleting_the_newest_version_and_its_tombstones_is_found(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(6)]
    poison = events[3]
    store.admit([admitted(e) for e in events])
    store.new_version("nightly", "cron")
    quarantined = store.quarantine([(NS, poison.event_id)], reason="sybil", actor="analysis")
    sql(
        raw,
        "DELETE FROM fg_tombstones WHERE version = :v",
        "DELETE FROM fg_versions WHERE version = :v",
        v=quarantined.version,
    )
    report = store.verify()
    assert not report.ok
    assert {p.table for p in report.problems} == {"head"}
    assert "cut off" in report.problems[0].problem
    assert "cut off" in refuses_to_export(store, tmp_path / "out.jsonl")


def test_swapping_the_ids_of_two_tombstones_of_one_event_is_found(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(6)]
    store.admit([admitted(e) for e in events])
    target = [(NS, events[0].event_id)]
    store.quarantine(target, reason="suspected", actor="analysis")
    store.restore(target, reason="false alarm", actor="moderator:bo")
    sql(
        raw,
        "UPDATE fg_tombstones SET id = 100 WHERE id = 1",
        "UPDATE fg_tombstones SET id = 1 WHERE id = 2",
        "UPDATE fg_tombstones SET id = 2 WHERE id = 100",
    )
    report = store.verify()
    assert {(p.table, p.id) for p in report.problems} == {("tombstones", 1), ("tombstones", 2)}
    refuses_to_export(store, tmp_path / "out.jsonl")
    assert len(list(store.iter_rows())) == 6  # the latest tombstone is the latest written


def test_deleting_a_row_added_after_the_latest_version_is_found(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    store.new_version("nightly", "cron")
    later = [make_event(at=10 + i) for i in range(3)]
    store.admit([admitted(e) for e in later])
    sql(raw, "DELETE FROM fg_items WHERE event_id = :e", e=later[1].event_id)
    report = store.verify()
    assert ("chain", 6) in [(p.table, p.id) for p in report.problems]  # positions 1-4: v1


def test_deleting_the_newest_row_is_found(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    store.new_version("nightly", "cron")
    newest = make_event(at=10)
    store.admit([admitted(newest)])
    sql(raw, "DELETE FROM fg_items WHERE event_id = :e", e=newest.event_id)
    report = store.verify()
    assert [(p.table, p.id) for p in report.problems] == [("head", 5)]


def test_reordering_rows_is_found(store: Store, raw: sa.Engine, make_event: MakeEvent) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    store.new_version("nightly", "cron")
    store.admit([admitted(make_event(at=10 + i)) for i in range(2)])
    sql(
        raw,
        "UPDATE fg_items SET id = 100 WHERE id = 4",
        "UPDATE fg_items SET id = 4 WHERE id = 5",
        "UPDATE fg_items SET id = 5 WHERE id = 100",
    )
    report = store.verify()
    assert {(p.table, p.id) for p in report.problems} == {("items", 4), ("items", 5)}


def test_swapping_the_positions_of_two_rows_is_found(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    sql(
        raw,
        "UPDATE fg_items SET position = 100 WHERE id = 1",
        "UPDATE fg_items SET position = 1 WHERE id = 2",
        "UPDATE fg_items SET position = 2 WHERE id = 100",
    )
    assert not store.verify().ok


def test_export_after_deleting_a_row_refuses_and_writes_nothing(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i) for i in range(5)]
    store.admit([admitted(e) for e in events])
    sql(raw, "DELETE FROM fg_items WHERE event_id = :e", e=events[2].event_id)
    message = refuses_to_export(store, tmp_path / "out.jsonl")
    assert "chain 3: positions 3 to 3 are missing" in message


def test_export_checks_what_it_wrote_against_the_versions_counts(
    store: Store, make_event: MakeEvent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(4)])
    from feedbackguard.store import export

    real = export.live_query
    monkeypatch.setattr(export, "live_query", lambda w, v: real(w, v).limit(3))
    message = refuses_to_export(store, tmp_path / "out.jsonl")
    assert "holds 4 live items, but 3 were written" in message


def test_the_export_manifest_names_the_chain_head_and_verify_checks_it(
    store: Store, raw: sa.Engine, make_event: MakeEvent, tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "out.jsonl"
    manifest = store.export(path)
    head = store.head()
    assert (manifest.chain.position, manifest.chain.digest) == (head.position, head.digest)
    assert Manifest.model_validate_json(manifest_path(path).read_bytes()) == manifest
    assert store.verify([manifest_path(path)]).ok
    # Cut the version the export made, and move every head kept in Redis back with it:
    # the manifest still shows the cut.
    sql(raw, "DELETE FROM fg_versions")
    r.set(keys.store_head(store.outside.key_id), f"3:{store.head().digest}")  # type: ignore[union-attr]
    r.delete(keys.audit())
    assert store.verify().ok
    report = store.verify([manifest_path(path)])
    assert [p.table for p in report.problems] == ["head"]
    assert "manifest" in report.problems[0].problem


def test_a_writer_refuses_to_extend_a_chain_that_was_cut(
    store: Store, raw: sa.Engine, make_event: MakeEvent
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    sql(raw, "DELETE FROM fg_items WHERE id = 3")
    with pytest.raises(IntegrityError, match="cut off"):
        store.admit([admitted(make_event(at=10 + i)) for i in range(2)])
    assert store.count() == 2  # nothing written over the cut


def test_the_head_kept_in_redis_and_the_audit_log_follow_every_write(
    store: Store, make_event: MakeEvent, r: redis.Redis[bytes]
) -> None:
    assert store.outside is not None
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    assert store.outside.published() == store.head()
    version = store.new_version("nightly", "cron")
    assert store.outside.published() == store.outside.audited() == store.head()
    store.admit([admitted(make_event(at=10))])
    assert store.outside.published() == store.head()
    assert store.outside.audited() == parse(f"{version.version + 3}:{_digest_at(store, 4)}")
    assert store.verify().heads_checked == ["Redis", "the audit log"]


def _digest_at(store: Store, position: int) -> str:
    from feedbackguard.store.queries import signature_at

    with store._db.reading() as conn:
        found = signature_at(conn, position)
    assert found is not None
    return found


def test_a_head_published_by_a_slower_writer_never_moves_the_kept_head_back(
    store: Store, make_event: MakeEvent
) -> None:
    assert store.outside is not None
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    newest = store.head()
    store.outside.publish(parse(f"2:{_digest_at(store, 2)}"))
    assert store.outside.published() == newest


# --- heads kept outside, and their loss -----------------------------------------------------


def test_a_store_whose_head_redis_lost_fails_verify_until_init_adopts_it(
    store_url: str,
    store: Store,
    make_event: MakeEvent,
    r: redis.Redis[bytes],
    redis_url: str,
    tmp_path: Path,
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(2)])
    r.flushdb()  # Redis lost its data
    report = store.verify()
    assert [p.table for p in report.problems] == ["head"]
    assert "store init --adopt-head" in report.problems[0].problem
    env = {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_SIGNING_KEY": KEY.decode(),
    }
    result = CliRunner(env=env).invoke(main, ["store", "init", "--actor", "ops"])
    assert result.exit_code == 0, result.output
    assert "chain head at position 2 now kept in Redis" in result.output
    assert store.verify().ok
    entry = next(e for e in _audit(r) if e["action"] == "store.head")
    assert (entry["actor"], entry["position"]) == ("ops", 2)


def _audit(r: redis.Redis[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(fields[b"a"]) for _, fields in r.xrevrange(keys.audit())]


def test_cli_verify_and_export_exit_1_naming_what_failed(
    store_url: str,
    store: Store,
    raw: sa.Engine,
    make_event: MakeEvent,
    redis_url: str,
    tmp_path: Path,
) -> None:
    events = [make_event(at=i) for i in range(3)]
    store.admit([admitted(e) for e in events])
    env = {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_SIGNING_KEY": KEY.decode(),
    }
    publickey.load_or_create(tmp_path / "home")  # the export key pair `store init` makes
    runner = CliRunner(env=env)
    ok = runner.invoke(main, ["store", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "against the head kept in Redis: 0 problem(s)" in ok.output
    sql(raw, "DELETE FROM fg_items WHERE event_id = :e", e=events[2].event_id)
    verify = runner.invoke(main, ["store", "verify"])
    assert verify.exit_code == 1
    assert "head 3: Redis names the chain head at position 3" in verify.output
    out = tmp_path / "out.jsonl"
    export = runner.invoke(main, ["store", "export", str(out)])
    assert export.exit_code == 1
    assert "Error: the store's chain does not hold the head published in Redis" in export.output
    assert "Traceback" not in export.output
    assert not out.exists()


# --- random tampering (property) ---------------------------------------------------------------

_TABLES = ("fg_items", "fg_tombstones", "fg_versions")
_IDS = {"fg_items": "id", "fg_tombstones": "id", "fg_versions": "version"}
_EDITS = {
    "fg_items": (
        "event = replace(event, 'spam', 'ham')",
        "account_id = account_id || 'x'",
        "namespace = 'other'",
        "event_id = event_id || 'x'",
        "decided_by = 'moderator:eve'",
        "signature = NULL",
    ),
    "fg_tombstones": (
        "action = CASE action WHEN 'quarantine' THEN 'restore' ELSE 'quarantine' END",
        "namespace = 'other'",
        "version = version + 1",
        "reason = reason || 'x'",
        "event_id = event_id || 'x'",
    ),
    "fg_versions": (
        "rows = rows + 1",
        "quarantined = quarantined + 1",
        "watermark = watermark - 1",
        "tombstones = tombstones + 1",
        "changed = changed + 1",
        "note = note || 'x'",
    ),
}

_tampering = st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(_TABLES), st.integers(0, 20)),
    st.tuples(st.just("cut"), st.integers(1, 4)),
    st.tuples(
        st.just("swap"),
        st.sampled_from(_TABLES),
        st.sampled_from(["ids", "positions"]),
        st.integers(0, 20),
        st.integers(1, 20),
    ),
    st.tuples(
        st.just("edit"),
        st.sampled_from(_TABLES),
        st.integers(0, 20),
        st.integers(0, 5),
    ),
    st.tuples(st.just("head"), st.sampled_from(["delete", "digest", "ahead"])),
)


def _rows(conn: sa.Connection, table: str) -> list[int]:
    column = _IDS[table]
    return list(conn.execute(sa.text(f"SELECT {column} FROM {table} ORDER BY {column}")).scalars())


def _tamper(engine: sa.Engine, r: redis.Redis[bytes], key_id: str, step: tuple[Any, ...]) -> None:
    """Apply one tampering: delete an entry, cut the newest entries off, swap the ids or
    the positions of two entries of one table, edit an entry, or change the head kept
    in Redis."""
    kind = step[0]
    head_key = keys.store_head(key_id)
    if kind == "head":
        kept = parse(r.get(head_key) or b"0:")
        if step[1] == "delete":
            r.delete(head_key)
        elif step[1] == "digest":
            r.set(head_key, f"{kept.position}:{secrets.token_hex(32)}")
        else:
            r.set(head_key, f"{kept.position + 1}:{kept.digest}")
        return
    with engine.begin() as conn:
        if kind == "cut":
            top = max(
                conn.execute(sa.text(f"SELECT coalesce(max(position), 0) FROM {t}")).scalar_one()
                for t in _TABLES
            )
            for table in _TABLES:
                delete = f"DELETE FROM {table} WHERE position > :p"
                conn.execute(sa.text(delete), {"p": top - step[1]})
            return
        table = step[1]
        column = _IDS[table]
        found = _rows(conn, table)
        assume(found)

        def update(assignment: str, where: int, value: int | None = None) -> None:
            statement = f"UPDATE {table} SET {assignment} WHERE {column} = :i"
            conn.execute(sa.text(statement), {"i": where, "v": value})

        if kind == "delete":
            target = found[step[2] % len(found)]
            conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :i"), {"i": target})
        elif kind == "edit":
            update(_EDITS[table][step[3] % len(_EDITS[table])], found[step[2] % len(found)])
        elif step[2] == "ids":
            a, b = found[step[3] % len(found)], found[(step[3] + step[4]) % len(found)]
            assume(a != b)
            update(f"{column} = -1", a)
            update(f"{column} = :v", b, a)
            update(f"{column} = :v", -1, b)
        else:
            a, b = found[step[3] % len(found)], found[(step[3] + step[4]) % len(found)]
            assume(a != b)
            select = f"SELECT position FROM {table} WHERE {column} = :i"
            pa, pb = (conn.execute(sa.text(select), {"i": i}).scalar_one() for i in (a, b))
            update("position = -1", a)
            update("position = :v", b, pa)
            update("position = :v", a, pb)


def _snapshot(engine: sa.Engine, r: redis.Redis[bytes], key_id: str) -> Any:
    with engine.connect() as conn:
        tables = [
            sorted(tuple(map(str, row)) for row in conn.execute(sa.text(f"SELECT * FROM {t}")))
            for t in _TABLES
        ]
    return tables, r.get(keys.store_head(key_id))


def _history(store: Store, make_event: MakeEvent) -> None:
    """A small store with every kind of entry: rows of two namespaces, versions,
    a quarantine and a restore, and rows after the latest version."""
    first = [make_event(at=i, namespace="a" if i % 2 else "b") for i in range(4)]
    store.admit([admitted(e) for e in first])
    store.new_version("nightly", "cron")
    target = [(first[1].namespace, first[1].event_id)]
    store.quarantine(target, reason="sybil", actor="analysis")
    store.admit([admitted(make_event(at=10 + i)) for i in range(2)])
    store.restore(target, reason="false alarm", actor="moderator:bo")
    store.admit([admitted(make_event(at=20))])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_tampering, min_size=1, max_size=3))
def test_random_deletions_swaps_and_edits_never_verify(
    store: Store,
    raw: sa.Engine,
    make_event: MakeEvent,
    r: redis.Redis[bytes],
    steps: Sequence[tuple[Any, ...]],
) -> None:
    sql(raw, *(f"DELETE FROM {t}" for t in _TABLES))
    r.flushdb()
    _history(store, make_event)
    assert store.outside is not None
    assert store.verify().ok
    before = _snapshot(raw, r, store.outside.key_id)
    for step in steps:
        _tamper(raw, r, store.outside.key_id, step)
    assume(_snapshot(raw, r, store.outside.key_id) != before)  # e.g. a swap swapped back
    assert not store.verify().ok, steps


# --- event ids are unique per namespace ----------------------------------------------------------


def test_the_same_event_id_in_two_namespaces_is_two_items_quarantined_apart(
    store: Store, make_event: MakeEvent
) -> None:
    one = make_event(event_id="same", namespace="shop")
    other = make_event(event_id="same", namespace="forum")
    assert store.admit([admitted(one), admitted(other)]) == 2
    store.quarantine([("forum", "same")], reason="undone", actor="moderator:ana")
    shop, forum = store.get("shop", "same"), store.get("forum", "same")
    assert shop is not None
    assert forum is not None
    assert (shop.event, shop.quarantined) == (one, False)
    assert (forum.event, forum.quarantined) == (other, True)
    assert [i.event.namespace for i in store.iter_rows()] == ["shop"]
    assert store.verify().ok


class _ToReview:
    """An analyser that sends the event `same` to review."""

    name = "to-review"

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        return {"same": [Reason("coordination.lockstep", "test", 0.6)]}


def test_undoing_one_namespaces_approval_leaves_the_others_item_in_the_store(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    pipeline.analysers = [_ToReview()]
    for namespace in ("shop", "forum"):
        pipe = r.pipeline(transaction=False)
        inbox_writer.append(pipe, [make_event(event_id="same", namespace=namespace)])
        pipe.execute()
        while pipeline.ingest_batch(namespace, "test").entries:
            pass
        pipeline.analyse(namespace)
        assert moderate(pipeline, namespace, ["same"], approve=True, actor="ana").approved
    undone = undo(pipeline, "forum", ["same"], actor="ana", window_s=600)
    assert undone.undone == ["same"]
    shop, forum = pipeline.store.get("shop", "same"), pipeline.store.get("forum", "same")
    assert shop is not None
    assert not shop.quarantined
    assert forum is not None
    assert forum.quarantined


# --- only the commands that create a home make a key --------------------------------------------


def test_from_settings_refuses_a_fresh_home_without_a_key_naming_store_init(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with pytest.raises(StoreKeyError, match="feedbackguard store init"):
        Store.from_settings(Settings(home=home))
    assert not (home / signing.KEY_FILE_NAME).exists()
    assert not (home / "store.db").exists()
    with Store.from_settings(Settings(home=home), create=True):
        pass
    assert (home / signing.KEY_FILE_NAME).exists()
    with Store.from_settings(Settings(home=home)) as s:
        assert s.verify().ok


def test_a_worker_starts_on_a_fresh_home(tmp_path: Path, redis_url: str) -> None:
    home = tmp_path / "home"
    env = {"FEEDBACKGUARD_HOME": str(home), "FEEDBACKGUARD_REDIS_URL": redis_url}
    result = CliRunner(env=env).invoke(main, ["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert (home / signing.KEY_FILE_NAME).exists()


def test_readers_refuse_a_home_whose_store_was_never_made(
    tmp_path: Path, redis_url: str, r: redis.Redis[bytes]
) -> None:
    home = tmp_path / "home"
    mark_home(home)  # as `users add` on the embedded Redis leaves it: no store, no key
    env = {"FEEDBACKGUARD_HOME": str(home), "FEEDBACKGUARD_REDIS_URL": redis_url}
    result = CliRunner(env=env).invoke(main, ["store", "verify"])
    assert result.exit_code == 1
    assert "feedbackguard store init" in result.output
    assert not (home / signing.KEY_FILE_NAME).exists()


# --- stores written before the chain --------------------------------------------------------------


def test_a_store_from_before_the_chain_is_refused_until_store_init_upgrades_it(
    store_url: str, make_event: MakeEvent, r: redis.Redis[bytes], tmp_path: Path, redis_url: str
) -> None:
    from tests.legacy_store import write_legacy_store

    events = [make_event(at=i, namespace="a" if i % 2 else "b") for i in range(5)]
    write_legacy_store(store_url, KEY, events)
    with pytest.raises(LegacyStoreError, match="feedbackguard store init"):
        Store(store_url, KEY)
    env = {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_SIGNING_KEY": KEY.decode(),
    }
    result = CliRunner(env=env).invoke(main, ["store", "init"])
    assert result.exit_code == 0, result.output
    assert "upgraded the store to the hash chain" in result.output
    with Store(store_url, KEY, r) as s:
        assert s.verify().ok
        assert [v.live for v in s.versions()] == [5, 4]
        assert [i.seq for i in s.iter_rows()] == [1, 2, 4, 5]
        quarantined = s.get(events[2].namespace, events[2].event_id)
        assert quarantined is not None
        assert quarantined.quarantined
