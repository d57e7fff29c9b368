"""Faults under load, with real processes: workers SIGKILLed again and again, Redis
killed and restarted from its append-only file, the SQL store unreachable during
release. After each, every event is decided exactly once, the store holds exactly
the admitted events, and `Store.verify` finds nothing wrong (docs/architecture.md,
invariants 1 and 2)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import get_args

import pytest
import redis
import sqlalchemy as sa

from feedbackguard import keys
from feedbackguard.decisions import Status
from feedbackguard.embedded import redis_server_binary
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.replay import push
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

pytestmark = pytest.mark.slow

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
KEY = b"fault-suite-signing-key-000000000"
SETTLE_TIMEOUT_S = 90.0
STATUSES = get_args(Status)
_PG_URL = os.environ.get("FEEDBACKGUARD_TEST_DATABASE_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except redis.ConnectionError:
            pass  # the server under test may be restarting
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Workers:
    """Worker processes on event time that a test can kill and replace."""

    def __init__(self, redis_url: str, home: Path, store_url: str) -> None:
        self.env = dict(
            os.environ,
            FEEDBACKGUARD_REDIS_URL=redis_url,
            FEEDBACKGUARD_HOME=str(home),
            FEEDBACKGUARD_STORE_URL=store_url,
            FEEDBACKGUARD_SIGNING_KEY=KEY.decode(),
            FEEDBACKGUARD_CLOCK="events",
            FEEDBACKGUARD_CLAIM_IDLE_MS="300",
            FEEDBACKGUARD_PUMP_INTERVAL_S="0.1",
            FEEDBACKGUARD_POLICY_CACHE_S="0",
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            command = [sys.executable, "-m", "feedbackguard", "worker", "--log-level", "ERROR"]
            self.procs.append(subprocess.Popen(command, env=self.env))

    def kill_one(self) -> None:
        proc = self.procs.pop(0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait()
        self.procs.clear()


def finish(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> None:
    """Wait for ingest, move the clock past every probation, wait for release."""
    wait_for(lambda: ledger.stats(r, NS).get("decided", 0) >= len(events))
    wait_for(lambda: inbox.backlog(r, NS) == 0)
    probation = PolicyStore(r).current().policy.probation_s
    pipe = r.pipeline()
    ledger.advance_clock(pipe, NS, events[-1].received_at.timestamp() + probation + 1)
    pipe.execute()
    wait_for(lambda: r.zcard(keys.pending(NS)) + r.zcard(keys.releasing(NS)) == 0)


def assert_exactly_once(r: redis.Redis[bytes], events: list[FeedbackEvent], store_url: str) -> None:
    stats = ledger.stats(r, NS)
    assert stats.get("decided") == len(events)
    records = ledger.load(r, NS, [e.event_id for e in events])
    statuses = [rec.decision.status if rec else "lost" for rec in records]
    assert "lost" not in statuses
    assert "pending" not in statuses
    # The status counters agree with the records: an event decided twice leaves them
    # over-counted even when its record shows one decision.
    assert {s: n for s, n in stats.items() if s in STATUSES and n} == Counter(statuses)
    with Store(store_url, KEY) as store:
        assert store.count() == statuses.count("admitted")
        stored = {item.event.event_id for item in store.iter_rows()}
        admitted = {e.event_id for e, s in zip(events, statuses, strict=True) if s == "admitted"}
        assert stored == admitted
        assert store.verify().ok


def _events(make_event: MakeEvent, n: int) -> list[FeedbackEvent]:
    # A few heavy accounts too, so rate limits reject some and not everything is admitted.
    return [
        make_event(at=i * 0.05, account_id=f"acct-{i % 400}" if i % 5 else "heavy")
        for i in range(n)
    ]


def test_workers_killed_again_and_again_lose_and_duplicate_nothing(
    r: redis.Redis[bytes], settings: Settings, store_url: str, make_event: MakeEvent
) -> None:
    events = _events(make_event, 8000)
    inbox.ensure_group(r, NS)
    workers = Workers(str(settings.redis_url), settings.home, store_url)
    workers.start(2)

    def trickle() -> None:  # the stream arrives over ~3 s, so kills land mid-batch
        for start in range(0, len(events), 400):
            push(r, events[start : start + 400], cap=1_000_000)
            time.sleep(0.15)

    feeder = threading.Thread(target=trickle)
    kills = 0
    try:
        feeder.start()
        while feeder.is_alive() or kills < 5:
            time.sleep(0.4)
            workers.kill_one()
            workers.start()
            kills += 1
        feeder.join()
        wait_for(lambda: ledger.stats(r, NS).get("decided", 0) >= len(events))
        probation = PolicyStore(r).current().policy.probation_s
        pipe = r.pipeline()
        ledger.advance_clock(pipe, NS, events[-1].received_at.timestamp() + probation + 1)
        pipe.execute()
        for _ in range(3):  # and during release
            time.sleep(0.3)
            workers.kill_one()
            workers.start()
            kills += 1
        finish(r, events)
    finally:
        workers.stop()
    assert kills >= 8
    assert_exactly_once(r, events, store_url)


class AofRedis:
    """A redis-server with `appendfsync always` that a test can SIGKILL and restart."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        args += ["--dir", str(self.home)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: bool(client.ping()), timeout_s=10)
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    server = AofRedis(tmp_path / "aof")
    server.home.mkdir()
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait()


def test_redis_killed_and_restarted_from_its_aof_mid_stream_loses_nothing(
    aof_redis: AofRedis, tmp_path: Path, make_event: MakeEvent
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    events = _events(make_event, 4000)
    r: redis.Redis[bytes] = redis.Redis.from_url(aof_redis.url)
    inbox.ensure_group(r, NS)
    workers = Workers(aof_redis.url, tmp_path / "home", store_url)
    workers.start(1)
    try:
        push(r, events[:2000], cap=1_000_000)
        wait_for(lambda: ledger.stats(r, NS).get("decided", 0) > 0)
        aof_redis.kill()
        time.sleep(0.5)
        aof_redis.start()
        push(r, events[2000:], cap=1_000_000)
        finish(r, events)
    finally:
        workers.stop()
    assert_exactly_once(r, events, store_url)
    r.close()


class TcpProxy:
    """Forwards a local port to a server; `cut()` drops every connection and refuses
    new ones (the server looks down), `restore()` accepts again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_pg() -> Iterator[tuple[str, str, TcpProxy]]:
    """(store URL through a proxy, direct URL, proxy) on a fresh PostgreSQL schema."""
    if not _PG_URL:
        pytest.skip("needs FEEDBACKGUARD_TEST_DATABASE_URL (a PostgreSQL to cut off)")
    url = sa.make_url(_PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.restore()
    direct = url.update_query_dict({"options": f"-csearch_path={schema}"})
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    yield (
        via_proxy.render_as_string(hide_password=False),
        direct.render_as_string(hide_password=False),
        proxy,
    )
    proxy.cut()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_store_unreachable_during_release_is_retried_and_loses_nothing(
    r: redis.Redis[bytes],
    settings: Settings,
    proxied_pg: tuple[str, str, TcpProxy],
    make_event: MakeEvent,
) -> None:
    via_proxy, direct, proxy = proxied_pg
    events = _events(make_event, 3000)
    inbox.ensure_group(r, NS)
    Store(direct, KEY).close()  # the schema's tables exist before the outage
    workers = Workers(str(settings.redis_url), settings.home, via_proxy)
    workers.start(1)
    try:
        push(r, events, cap=1_000_000)
        wait_for(lambda: ledger.stats(r, NS).get("decided", 0) >= len(events))
        proxy.cut()
        probation = PolicyStore(r).current().policy.probation_s
        pipe = r.pipeline()
        ledger.advance_clock(pipe, NS, events[-1].received_at.timestamp() + probation + 1)
        pipe.execute()
        time.sleep(2.0)  # release jobs run and fail against the cut-off store
        assert r.zcard(keys.pending(NS)) + r.zcard(keys.releasing(NS)) > 0
        proxy.restore()
        finish(r, events)
    finally:
        workers.stop()
    assert_exactly_once(r, events, direct)
