"""`feedbackguard redis status / stop`: every embedded Redis left behind is found."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedbackguard import embedded
from feedbackguard.cli import main
from feedbackguard.embedded import EmbeddedRedis, redis_server_binary

START_TIMEOUT_S = 10.0
pytestmark = pytest.mark.slow  # each test starts and stops redis-server processes


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[list[EmbeddedRedis]]:
    """Two homes under tmp_path, each with its embedded Redis running."""
    servers = [EmbeddedRedis(tmp_path / name / ".feedbackguard") for name in ("app", "elsewhere")]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_running_finds_every_embedded_redis_whatever_its_home(
    tmp_path: Path, homes: list[EmbeddedRedis]
) -> None:
    assert [s.home for s in embedded.running(under=tmp_path)] == [s.home for s in homes]


def test_running_ignores_a_redis_that_is_no_home_of_ours(tmp_path: Path) -> None:
    other = EmbeddedRedis(tmp_path / "unused")
    other.socket = tmp_path / "other.sock"  # a plain server, data in tmp_path itself
    subprocess.run(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(other.socket),
         "--dir", str(tmp_path), "--daemonize", "yes", "--save", ""],
        check=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not other.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.is_running()
        assert embedded.running(under=tmp_path) == []
    finally:
        other.stop()


def test_redis_status_lists_the_homes_running_and_marks_this_one(
    homes: list[EmbeddedRedis],
) -> None:
    env = {"FEEDBACKGUARD_HOME": str(homes[0].home), "FEEDBACKGUARD_REDIS_URL": None}
    output = CliRunner(env=env).invoke(main, ["redis", "status"]).output
    assert output.startswith(f"this home ({homes[0].home}): running")
    assert f"  {homes[0].home}  (pid {homes[0].pid()})  <- this home\n" in output
    assert f"  {homes[1].home}  (pid {homes[1].pid()})\n" in output


def test_redis_stop_stops_only_this_homes(homes: list[EmbeddedRedis]) -> None:
    env = {"FEEDBACKGUARD_HOME": str(homes[0].home), "FEEDBACKGUARD_REDIS_URL": None}
    result = CliRunner(env=env).invoke(main, ["redis", "stop"])
    assert result.output == f"stopped the embedded Redis of {homes[0].home}\n"
    assert [s.is_running() for s in homes] == [False, True]


def test_redis_stop_all_stops_every_one(
    tmp_path: Path, homes: list[EmbeddedRedis], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every one under tmp_path: the machine's others (other tests' servers) stay up.
    everywhere = embedded.running
    monkeypatch.setattr(embedded, "running", lambda: everywhere(under=tmp_path))
    CliRunner().invoke(main, ["redis", "stop", "--all"])
    assert [s.is_running() for s in homes] == [False, False]
