"""Exports a training job uses as they are: flat typed columns, the format from the
file's suffix, personal data left out unless asked for, one row per item on request,
and manifests a training job checks with the public key alone."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from feedbackguard.cli import main
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import (
    Store,
    StoreError,
    check_export,
    manifest_path,
    publickey,
    signature_path,
)
from feedbackguard.store.flat import EVENT_COLUMNS, ITEM_COLUMNS, PII_COLUMNS

MakeEvent = Callable[..., FeedbackEvent]
README = Path(__file__).resolve().parent.parent / "README.md"


def admitted(event: FeedbackEvent) -> tuple[FeedbackEvent, list[Decision]]:
    pending = Decision(event_id=event.event_id, status="pending", risk=0.1, policy_version=1)
    return event, [pending, pending.model_copy(update={"status": "admitted"})]


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def public_key(store: Store) -> Any:
    assert store.export_public_key is not None
    return store.export_public_key


def test_an_exported_row_is_flat_with_the_documented_columns(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    event = make_event(payload={"text": "buy now"})
    store.admit([admitted(event)])
    path = tmp_path / "out.jsonl"
    store.export(path)
    [row] = lines(path)
    assert list(row) == [c.name for c in EVENT_COLUMNS]
    assert (row["event_id"], row["namespace"], row["item_id"], row["kind"]) == (
        event.event_id,
        event.namespace,
        event.item_id,
        "label",
    )
    assert (row["label"], row["value"], row["text"], row["features"]) == (
        "spam",
        None,
        "buy now",
        None,
    )


def test_a_numeric_value_goes_to_value_and_a_string_to_label(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=0, kind="rating", value=4)), admitted(make_event(at=1))])
    path = tmp_path / "out.jsonl"
    store.export(path)
    assert [(r["label"], r["value"]) for r in lines(path)] == [(None, 4.0), ("spam", None)]


def test_every_exported_event_weighs_one(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "out.jsonl"
    store.export(path)
    assert [r["weight"] for r in lines(path)] == [1.0, 1.0, 1.0]


def test_pandas_reads_the_parquet_export_with_typed_columns(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    store.admit(
        [
            admitted(make_event(at=0, payload={"features": [0.5, 1.5]})),
            admitted(make_event(at=1, kind="rating", value=3)),
        ]
    )
    path = tmp_path / "out.parquet"
    store.export(path)
    frame = pd.read_parquet(path)
    assert list(frame.columns) == [c.name for c in EVENT_COLUMNS]
    assert list(frame["features"].iloc[0]) == [0.5, 1.5]
    assert frame["features"].iloc[0].dtype == "float64"
    assert frame["value"].dtype == "float64"
    assert frame["value"].iloc[1] == 3.0
    assert frame["seq"].dtype == "int64"
    assert str(frame["admitted_at"].dtype).startswith("datetime64")
    assert str(frame["admitted_at"].dt.tz) == "UTC"


def test_a_parquet_export_is_a_parquet_file(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow")
    store.admit([admitted(make_event())])
    path = tmp_path / "out.parquet"
    manifest = store.export(path)
    assert path.read_bytes()[:4] == b"PAR1"
    assert manifest.format == "parquet"


@pytest.mark.parametrize("name", ["out.csv", "out.json", "out"])
def test_an_export_file_without_a_known_suffix_is_refused_before_a_version_is_made(
    store: Store, make_event: MakeEvent, tmp_path: Path, name: str
) -> None:
    store.admit([admitted(make_event())])
    (tmp_path / "out").mkdir()
    with pytest.raises(StoreError, match=r"\*\.jsonl or \*\.parquet"):
        store.export(tmp_path / "out" / name)
    assert store.versions() == []
    assert list((tmp_path / "out").iterdir()) == []


def test_personal_data_is_left_out_by_default(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    event = make_event(
        account_id="alice@example.org", ip="203.0.113.9", user_agent="UA/1", device_id="dev-7"
    )
    store.admit([admitted(event)])
    path = tmp_path / "out.jsonl"
    manifest = store.export(path)
    data = path.read_bytes()
    for secret in (b"alice@example.org", b"203.0.113.9", b"UA/1", b"dev-7"):
        assert secret not in data
    assert not {c.name for c in PII_COLUMNS} & set(lines(path)[0])
    assert manifest.pii is False


def test_include_pii_keeps_the_personal_data(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    event = make_event(
        account_id="alice@example.org", ip="203.0.113.9", user_agent="UA/1", device_id="dev-7"
    )
    store.admit([admitted(event)])
    path = tmp_path / "out.jsonl"
    store.export(path, include_pii=True)
    [row] = lines(path)
    assert (row["account_id"], row["ip"], row["user_agent"], row["device_id"]) == (
        "alice@example.org",
        "203.0.113.9",
        "UA/1",
        "dev-7",
    )


def test_the_account_pseudonym_is_stable_across_exports_and_distinct_per_account(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i, account_id=a)) for i, a in enumerate("aab")])
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    store.export(first)
    store.export(second)
    accounts = [r["account"] for r in lines(first)]
    assert accounts == [r["account"] for r in lines(second)]
    assert accounts[0] == accounts[1] != accounts[2]
    assert all(re.fullmatch(r"[0-9a-f]{32}", a) for a in accounts)


def test_per_item_gives_one_row_per_item_with_its_majority_label_support_and_agreement(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    values = ["spam", "spam", "ham", "spam"]
    store.admit([admitted(make_event(at=i, item_id="x", value=v)) for i, v in enumerate(values)])
    store.admit([admitted(make_event(at=9, item_id="y", value="ham"))])
    path = tmp_path / "items.jsonl"
    manifest = store.export(path, per_item=True)
    rows = lines(path)
    assert list(rows[0]) == [c.name for c in ITEM_COLUMNS]
    assert [(r["item_id"], r["label"], r["support"], r["agreement"]) for r in rows] == [
        ("x", "spam", 4, 0.75),
        ("y", "ham", 1, 1.0),
    ]
    assert (manifest.layout, manifest.rows, manifest.items) == ("items", 2, 5)


def test_check_export_passes_an_untouched_export(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "out.jsonl"
    store.export(path)
    assert check_export(path, public_key(store)) == []


def test_check_export_fails_on_a_modified_data_file(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "out.jsonl"
    store.export(path)
    path.write_bytes(path.read_bytes().replace(b'"spam"', b'"ham!"', 1))
    assert check_export(path, public_key(store)) == ["data file SHA-256 differs from the manifest"]


def test_check_export_fails_on_a_modified_manifest(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "out.jsonl"
    store.export(path)
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])
    manifest = orjson.loads(manifest_path(path).read_bytes())
    manifest.update(rows=1, items=1, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    manifest_path(path).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    problems = check_export(path, public_key(store))
    assert problems == ["manifest signature does not verify with this public key"]


def test_check_export_fails_with_another_public_key(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event())])
    path = tmp_path / "out.jsonl"
    store.export(path)
    other = Ed25519PrivateKey.generate().public_key()
    assert check_export(path, other) == ["manifest signature does not verify with this public key"]


def test_a_store_without_an_export_key_refuses_to_export(
    store_url: str, make_event: MakeEvent, tmp_path: Path
) -> None:
    with Store(store_url, b"k" * 32) as s:
        s.admit([admitted(make_event())])
        with pytest.raises(StoreError, match="store init"):
            s.export(tmp_path / "out.jsonl")


@pytest.fixture
def cli_env(store_url: str, tmp_path: Path, redis_url: str) -> dict[str, str]:
    return {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
    }


def _fill(env: dict[str, str], make_event: MakeEvent, r: redis.Redis[bytes]) -> None:
    settings = Settings(
        store_url=env["FEEDBACKGUARD_STORE_URL"], home=Path(env["FEEDBACKGUARD_HOME"])
    )
    with Store.from_settings(settings, r) as s:
        s.admit([admitted(make_event(at=i)) for i in range(3)])


def test_store_init_makes_the_export_key_pair_with_a_private_key_only_the_owner_reads(
    cli_env: dict[str, str],
) -> None:
    result = CliRunner(env=cli_env).invoke(main, ["store", "init"])
    assert result.exit_code == 0, result.output
    home = Path(cli_env["FEEDBACKGUARD_HOME"])
    assert stat.S_IMODE(os.stat(home / publickey.PRIVATE_KEY_FILE_NAME).st_mode) == 0o600
    private = publickey.load_private(home / publickey.PRIVATE_KEY_FILE_NAME)
    public = publickey.load_public(home / publickey.PUBLIC_KEY_FILE_NAME)
    assert publickey.public_pem(private.public_key()) == publickey.public_pem(public)


def test_cli_public_key_prints_the_export_public_key(cli_env: dict[str, str]) -> None:
    runner = CliRunner(env=cli_env)
    assert runner.invoke(main, ["store", "init"]).exit_code == 0
    result = runner.invoke(main, ["store", "public-key"])
    assert result.exit_code == 0, result.output
    home = Path(cli_env["FEEDBACKGUARD_HOME"])
    assert result.output.encode() == (home / publickey.PUBLIC_KEY_FILE_NAME).read_bytes()


def test_cli_check_export_passes_an_export_and_fails_a_modified_one(
    cli_env: dict[str, str], make_event: MakeEvent, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    runner = CliRunner(env=cli_env)
    assert runner.invoke(main, ["store", "init"]).exit_code == 0
    _fill(cli_env, make_event, r)
    path = tmp_path / "data.parquet"
    assert runner.invoke(main, ["store", "export", str(path)]).exit_code == 0
    ok = runner.invoke(main, ["store", "check-export", str(path)])
    assert ok.exit_code == 0, ok.output
    path.write_bytes(path.read_bytes() + b"\0")
    bad = runner.invoke(main, ["store", "check-export", str(path)])
    assert bad.exit_code == 1
    assert "SHA-256 differs" in bad.output


def test_cli_check_export_fails_with_a_wrong_public_key(
    cli_env: dict[str, str], make_event: MakeEvent, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    runner = CliRunner(env=cli_env)
    assert runner.invoke(main, ["store", "init"]).exit_code == 0
    _fill(cli_env, make_event, r)
    path = tmp_path / "data.jsonl"
    assert runner.invoke(main, ["store", "export", str(path)]).exit_code == 0
    wrong = tmp_path / "wrong.pub"
    wrong.write_bytes(publickey.public_pem(Ed25519PrivateKey.generate().public_key()))
    result = runner.invoke(main, ["store", "check-export", str(path), "--public-key", str(wrong)])
    assert result.exit_code == 1
    assert "signature does not verify" in result.output


def _readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- training-side check -->\s*```python\n(.*?)```", text, re.S)
    assert found is not None, "README has no training-side check snippet"
    return found.group(1)


def test_the_readme_training_side_snippet_checks_an_export_with_the_public_key_alone(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    store.admit([admitted(make_event(at=i)) for i in range(3)])
    path = tmp_path / "data.jsonl"
    store.export(path)
    pem = tmp_path / "export.pub"
    pem.write_bytes(publickey.public_pem(public_key(store)))
    namespace: dict[str, Any] = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), namespace)  # noqa: S102
    namespace["check_export"](str(path), str(pem))  # raises when the export is bad
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(Exception, match="SHA-256"):
        namespace["check_export"](str(path), str(pem))
    assert signature_path(path).exists()
