"""Robust contribution caps at export: no account holds more than a policy share of any
label or item, and the manifest says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import redis
from click.testing import CliRunner

from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import ExportCaps, Store
from tests.test_store import admitted

MakeEvent = Callable[..., FeedbackEvent]


def fill(store: Store, make_event: MakeEvent) -> None:
    """20 "spam" labels from 20 accounts, then 20 more "spam" from one account."""
    store.admit([admitted(make_event(at=i, item_id=f"i{i}")) for i in range(20)])
    store.admit(
        [admitted(make_event(at=100 + i, account_id="loud", item_id=f"j{i}")) for i in range(20)]
    )


def accounts_of(path: Path) -> list[str]:
    return [orjson.loads(line)["account_id"] for line in path.read_bytes().splitlines()]


def test_no_account_keeps_more_than_the_share_of_a_label(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    fill(store, make_event)
    path = tmp_path / "out.jsonl"
    manifest = store.export(path, caps=ExportCaps(max_share=0.1), include_pii=True)
    kept = accounts_of(path)
    assert kept.count("loud") == 4  # 10 % of the 40 "spam" labels
    assert len(kept) == 24
    assert manifest.excluded["over_share"] == 16
    assert manifest.caps is not None
    assert manifest.caps.max_share == 0.1


def test_no_account_keeps_more_than_the_share_of_an_item(
    store: Store, make_event: MakeEvent, tmp_path: Path
) -> None:
    events = [make_event(at=i, item_id="hot", value=f"v{i}") for i in range(10)]
    events += [
        make_event(at=20 + i, account_id="loud", item_id="hot", value=f"w{i}") for i in range(10)
    ]
    store.admit([admitted(e) for e in events])
    path = tmp_path / "out.jsonl"
    store.export(path, caps=ExportCaps(max_share=0.2), include_pii=True)
    assert accounts_of(path).count("loud") == 4  # 20 % of the item's 20 rows


def test_cli_export_applies_the_policy_share_and_reports_it(
    store_url: str, redis_url: str, r: redis.Redis[bytes], make_event: MakeEvent, tmp_path: Path
) -> None:
    env = {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
    }
    policy = Policy.default()
    PolicyStore(r).set(
        policy.model_copy(
            update={"consistency": policy.consistency.model_copy(update={"export_max_share": 0.25})}
        ),
        author="test",
    )
    settings = Settings(store_url=store_url, home=tmp_path / "home")
    with Store.from_settings(settings, r, create=True) as s:
        fill(s, make_event)
    path = tmp_path / "data.jsonl"
    result = CliRunner(env=env).invoke(main, ["store", "export", "--include-pii", str(path)])
    assert result.exit_code == 0, result.output
    assert accounts_of(path).count("loud") == 10
    manifest = orjson.loads((tmp_path / "data.jsonl.manifest.json").read_bytes())
    assert manifest["caps"]["max_share"] == 0.25
    assert manifest["excluded"]["over_share"] == 10


def test_cli_export_max_share_1_turns_the_cap_off(
    store_url: str, redis_url: str, r: redis.Redis[bytes], make_event: MakeEvent, tmp_path: Path
) -> None:
    env = {
        "FEEDBACKGUARD_STORE_URL": store_url,
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
    }
    settings = Settings(store_url=store_url, home=tmp_path / "home")
    with Store.from_settings(settings, r, create=True) as s:
        fill(s, make_event)
    path = tmp_path / "data.jsonl"
    result = CliRunner(env=env).invoke(
        main, ["store", "export", "--include-pii", str(path), "--max-share", "1"]
    )
    assert result.exit_code == 0, result.output
    assert len(accounts_of(path)) == 40
