"""`feedbackguard keys`, `users`, `purge range`: the admin CLI mirrors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from click.testing import CliRunner

from feedbackguard import audit
from feedbackguard.cli import main
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.settings import Settings
from feedbackguard.store import Store
from feedbackguard.web import auth

MakeEvent = Callable[..., FeedbackEvent]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    return settings


def test_keys_add_prints_secret_once_and_it_works(env: Settings, r: redis.Redis[bytes]) -> None:
    done = CliRunner().invoke(main, ["keys", "add", "ops", "--role", "admin"])
    assert done.exit_code == 0, done.output
    secret = next(line.split()[1] for line in done.output.splitlines() if line.startswith("secret"))
    assert auth.principal_for_key(r, secret) == auth.Principal("ops", "admin", "key")


def test_keys_revoke_unknown_key_fails(env: Settings, r: redis.Redis[bytes]) -> None:
    done = CliRunner().invoke(main, ["keys", "revoke", "nope"])
    assert done.exit_code != 0


def test_users_add_reads_password_from_stdin(env: Settings, r: redis.Redis[bytes]) -> None:
    done = CliRunner().invoke(
        main,
        ["users", "add", "mo", "--role", "moderator", "--password-stdin"],
        input="s3cret s3cret\n",
    )
    assert done.exit_code == 0, done.output
    assert auth.verify_password(r, "mo", "s3cret s3cret") is not None
    assert audit.entries(r, 1)[0]["action"] == "user.add"


def test_purge_range_quarantines_items_received_in_range(
    env: Settings, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    events = [make_event(received_at=t0), make_event(received_at=t0 + timedelta(days=3))]
    with Store.from_settings(env, r, create=True) as store:
        store.admit(
            [(e, Decision(event_id=e.event_id, status="admitted", risk=0.0, policy_version=1))
             for e in events]
        )  # fmt: skip
    done = CliRunner().invoke(
        main, ["purge", "range", "--start", "2024-03-01", "--end", "2024-03-02", "--actor", "ana"]
    )
    assert done.exit_code == 0, done.output
    assert "1 item(s) quarantined, 1 live" in done.output
    assert audit.entries(r, 1)[0]["action"] == "store.purge"
