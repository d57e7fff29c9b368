"""Commands that read data refuse a home that was never initialised instead of
creating an empty one (the default home is relative to the working directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from feedbackguard.cli import main
from feedbackguard.embedded import HOME_MARKER, home_initialised
from feedbackguard.store import signing

READING_COMMANDS = [
    ["store", "verify"],
    ["store", "export", "out.jsonl"],
    ["store", "versions"],
    ["review", "list"],
    ["review", "approve", "e1"],
    ["accounts", "show", "a1"],
    ["accounts", "block", "a1"],
    ["policy", "show"],
    ["policy", "history"],
    ["policy", "rollback", "1"],
    ["decisions", "e1"],
    ["held", "list"],
    ["held", "requeue", "--yes"],
    ["keys", "list"],
    ["keys", "revoke", "k1"],
    ["users", "remove", "u1"],
    ["purge", "account", "a1"],
    ["spool", "replay"],
]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no home in it, and no FEEDBACKGUARD_* servers or home."""
    for name in ("FEEDBACKGUARD_HOME", "FEEDBACKGUARD_REDIS_URL", "FEEDBACKGUARD_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args", READING_COMMANDS, ids=" ".join)
def test_reading_commands_refuse_a_never_initialised_home_with_exit_2(
    elsewhere: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    home = (elsewhere / ".feedbackguard").resolve()
    assert f"no feedbackguard home at {home}: set FEEDBACKGUARD_HOME" in result.output
    assert not home.exists()  # nothing created: no store, no key, no Redis


def test_store_init_makes_a_home_the_reading_commands_accept(elsewhere: Path) -> None:
    runner = CliRunner()
    init = runner.invoke(main, ["store", "init"])
    assert init.exit_code == 0, init.output
    home = elsewhere / ".feedbackguard"
    assert (home / HOME_MARKER).exists()
    assert (home / signing.KEY_FILE_NAME).exists()
    verify = runner.invoke(main, ["store", "verify"])
    assert verify.exit_code == 0, verify.output
    assert "0 problem(s)" in verify.output


def test_reading_commands_need_no_home_when_redis_is_configured(
    elsewhere: Path, redis_url: str
) -> None:
    result = CliRunner(env={"FEEDBACKGUARD_REDIS_URL": redis_url}).invoke(main, ["policy", "show"])
    assert result.exit_code == 0, result.output
    assert not (elsewhere / ".feedbackguard").exists()


@pytest.mark.parametrize("content", ["signing.key", "store.db", "redis"])
def test_a_home_from_before_the_marker_counts_as_initialised(tmp_path: Path, content: str) -> None:
    home = tmp_path / "home"
    assert not home_initialised(home)
    (home / content).mkdir(parents=True)
    assert home_initialised(home)
