"""`feedbackguard purge`: an account's or a cluster's items out of the next training run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from click.testing import CliRunner

from feedbackguard import accounts, audit
from feedbackguard.cli import main
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import Store

MakeEvent = Callable[..., FeedbackEvent]


@pytest.fixture
def stored(
    settings: Settings,
    make_event: MakeEvent,
    monkeypatch: pytest.MonkeyPatch,
    r: redis.Redis[bytes],
) -> list[FeedbackEvent]:
    """Two items of `sybil-1`, one of `sybil-2`, one honest, in the deployment's store."""
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    events = [make_event(account_id=a) for a in ("sybil-1", "sybil-1", "sybil-2", "honest")]
    now = datetime.now(UTC)
    with Store.from_settings(settings, r, create=True) as store:
        store.admit(
            [
                (e, Decision(event_id=e.event_id, status="admitted", risk=0.0, policy_version=1,
                             decided_at=now))
                for e in events
            ]
        )  # fmt: skip
    return events


def live(settings: Settings) -> set[str]:
    with Store.from_settings(settings) as store:
        return {item.event.account_id for item in store.iter_rows()}


def test_purging_an_account_quarantines_its_items_in_a_new_audited_version(
    stored: list[FeedbackEvent], settings: Settings, r: redis.Redis[bytes]
) -> None:
    done = CliRunner().invoke(main, ["purge", "account", "sybil-1", "--actor", "ana"])
    assert done.exit_code == 0, done.output
    assert "2 item(s) quarantined" in done.output
    assert live(settings) == {"sybil-2", "honest"}
    entry = audit.entries(r, 1)[0]
    assert (entry["actor"], entry["action"], entry["accounts"]) == (
        "ana",
        "store.purge",
        ["sybil-1"],
    )


def test_purging_a_cluster_quarantines_its_members_and_restore_brings_them_back(
    stored: list[FeedbackEvent], settings: Settings, r: redis.Redis[bytes]
) -> None:
    accounts.replace_findings(r, "default", [], [("c1", {"members": ["sybil-1", "sybil-2"]})])
    runner = CliRunner()
    assert runner.invoke(main, ["purge", "cluster", "c1"]).exit_code == 0
    assert live(settings) == {"honest"}
    assert runner.invoke(main, ["purge", "restore", "sybil-2"]).exit_code == 0
    assert live(settings) == {"sybil-2", "honest"}
    assert runner.invoke(main, ["purge", "cluster", "nope"]).exit_code == 1
