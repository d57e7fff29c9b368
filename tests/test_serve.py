"""`feedbackguard serve`: a production WSGI server by default, Werkzeug's with --dev."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedbackguard.cli import main

# How long the server may take to import and bind before the test gives up.
START_TIMEOUT_S = 60


class Server:
    """`feedbackguard serve --port 0 ARGS` in a process of its own."""

    def __init__(self, args: list[str], home: Path, redis_url: str, **env_extra: str) -> None:
        env = {
            **os.environ,
            "FEEDBACKGUARD_HOME": str(home),
            "FEEDBACKGUARD_REDIS_URL": redis_url,
            "FEEDBACKGUARD_LOG_LEVEL": "WARNING",
            **env_extra,
        }
        command = [sys.executable, "-m", "feedbackguard", "serve", "--port", "0", *args]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the banner, printed once the port is bound
        found = re.search(r"serving on (http://\S+)", line)
        assert found is not None, line
        self.base = found.group(1)

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(self.base + path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=START_TIMEOUT_S) as resp:  # noqa: S310
                return resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=START_TIMEOUT_S)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def serve(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        server = Server(list(args), tmp_path / "home", redis_url, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.slow
def test_serve_uses_waitress_by_default(serve: Callable[..., Server]) -> None:
    server = serve()
    status, headers = server.get("/healthz")
    assert status == 200
    assert headers["Server"] == "waitress"


@pytest.mark.slow
def test_serve_dev_uses_werkzeugs_development_server(serve: Callable[..., Server]) -> None:
    server = serve("--dev")
    status, headers = server.get("/healthz")
    assert status == 200
    assert headers["Server"].startswith("Werkzeug")


def test_serve_help_names_the_admin_api_where_it_is_mounted() -> None:
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "/api/v1" in help_text
    assert "--threads" in help_text
    assert "--timeout" in help_text


@pytest.mark.slow
def test_serve_keeps_x_forwarded_for_for_the_trusted_proxy_setting(
    serve: Callable[..., Server],
) -> None:
    server = serve(FEEDBACKGUARD_TRUSTED_PROXIES="1", FEEDBACKGUARD_AUTH_FAIL_LIMIT="2")
    bad_key = {"Authorization": "Bearer fgk_not_a_key"}
    for _ in range(3):
        status, _ = server.get("/api/v1/whoami", **bad_key, **{"X-Forwarded-For": "203.0.113.1"})
    assert status == 429  # that client is over its limit of failures
    status, _ = server.get("/api/v1/whoami", **bad_key, **{"X-Forwarded-For": "203.0.113.2"})
    assert status == 401  # another client behind the same proxy is not
