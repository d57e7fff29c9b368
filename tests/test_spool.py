"""Redis outages: the product keeps answering, events are spooled, then replayed.

"Redis" here is a real redis-server process this module starts and stops on a free
port, so "down" and "back" are the real thing (connection refused, then accepted).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import redis
from click.testing import CliRunner

from feedbackguard import FeedbackGuard, keys
from feedbackguard.capture.spool import Spool, SpoolFullError
from feedbackguard.cli import main
from feedbackguard.embedded import redis_server_binary
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox
from feedbackguard.settings import Settings

START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A throwaway redis-server that a test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [redis_server_binary(), "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis.from_url(self.url)
        try:
            while time.monotonic() < deadline:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    proc = RedisProcess(_free_port())
    proc.start()
    yield proc
    proc.stop()


def _settings(tmp_path: Path, url: str, **update: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "redis_url": url,
        "redis_timeout_ms": 200.0,
        "spool_retry_s": 3600.0,
        "breaker_cooldown_s": 3600.0,
    }
    values.update(update)
    return Settings(**values)


class FakeClock:
    """The breakers' time source, moved by the test instead of waited out."""

    def __init__(self, step_s: float = 0.0) -> None:
        self.now = 0.0
        self.step_s = step_s
        """How far each reading moves time on."""

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def _app(
    settings: Settings, clock: Callable[[], float] = time.monotonic
) -> tuple[flask.Flask, FeedbackGuard]:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=settings, clock=clock)

    @app.post("/tickets/<ticket_id>/feedback")
    @guard.feedback(
        kind="label", account="header:X-User", item="view:ticket_id", value="json:label"
    )
    def feedback(ticket_id: str) -> dict[str, Any]:
        return {"saved": ticket_id}

    return app, guard


def _post(client: flask.testing.FlaskClient, n: int, start: int = 0) -> list[Any]:
    return [
        client.post(
            f"/tickets/t{i}/feedback",
            json={"label": "billing"},
            headers={"X-User": f"u{i}", "Idempotency-Key": f"ev-{i}"},
        )
        for i in range(start, start + n)
    ]


def _event_ids(r: redis.Redis[bytes]) -> list[str]:
    entries = r.xrange(keys.inbox("default"))
    return [FeedbackEvent.from_json(fields[b"e"]).event_id for _, fields in entries]


@pytest.fixture
def outage(tmp_path: Path, server: RedisProcess) -> Iterator[tuple[flask.Flask, FeedbackGuard]]:
    """An app whose Redis is down (stopped after the app was set up)."""
    app, guard = _app(_settings(tmp_path, server.url))
    server.stop()
    yield app, guard
    guard.close()


def test_product_endpoint_answers_unchanged_while_redis_is_down(
    outage: tuple[flask.Flask, FeedbackGuard],
) -> None:
    responses = _post(outage[0].test_client(), 5)
    assert [(r.status_code, r.get_json()) for r in responses] == [
        (200, {"saved": f"t{i}"}) for i in range(5)
    ]


def test_events_are_spooled_while_redis_is_down(
    outage: tuple[flask.Flask, FeedbackGuard],
) -> None:
    app, guard = outage
    _post(app.test_client(), 7)
    assert guard.counters.spooled == 7
    assert guard.counters.captured == 0
    assert guard.capture_of().spool.status().spooled_events == 7


def test_replay_after_redis_is_back_sends_each_event_exactly_once(
    outage: tuple[flask.Flask, FeedbackGuard], server: RedisProcess
) -> None:
    app, guard = outage
    _post(app.test_client(), 25)
    server.start()
    assert guard.replay_spool() == 25
    assert guard.replay_spool() == 0
    with server.client() as r:
        assert sorted(_event_ids(r)) == sorted(f"ev-{i}" for i in range(25))
        assert r.smembers(keys.namespaces()) == {b"default"}
    assert not guard.capture_of().spool.has_pending()


def test_background_retry_replays_the_spool_when_redis_is_back(
    tmp_path: Path, server: RedisProcess
) -> None:
    settings = _settings(tmp_path, server.url, spool_retry_s=0.1, breaker_cooldown_s=0.1)
    app, guard = _app(settings)
    try:
        server.stop()
        _post(app.test_client(), 10)
        server.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        with server.client() as r:
            while r.xlen(keys.inbox("default")) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            _post(app.test_client(), 1, start=10)  # breaker closed again: direct capture
            assert sorted(_event_ids(r)) == sorted(f"ev-{i}" for i in range(11))
        assert guard.counters.captured == 1
    finally:
        guard.close()


def _blackhole() -> socket.socket:
    """A listening socket that never answers: connects succeed, reads time out."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    return hole


def test_slow_redis_costs_one_timeout_then_the_breaker_spools_at_once(tmp_path: Path) -> None:
    hole = _blackhole()
    url = f"redis://127.0.0.1:{hole.getsockname()[1]}/0"
    app, guard = _app(_settings(tmp_path, url, redis_timeout_ms=200.0))
    try:
        client = app.test_client()
        started = time.monotonic()
        _post(client, 1)
        first = time.monotonic() - started
        started = time.monotonic()
        _post(client, 10, start=1)
        rest = time.monotonic() - started
        # One timeout, no redis-py retries (3 retries would be >= 0.8 s).
        assert 0.15 <= first < 0.6
        assert rest < 0.2
        assert guard.counters.spooled == 11
    finally:
        guard.close()
        hole.close()


def test_spool_refuses_past_its_bound_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "small.jsonl", max_bytes=1000)
    raw = FeedbackEvent(kind="label", account_id="a", item_id="i", value="v").to_json()
    fits = 1000 // (len(raw) + 1)  # each line is the JSON plus a newline
    for _ in range(fits):
        spool.append(raw)
    with (
        caplog.at_level(logging.ERROR, logger="feedbackguard.capture.spool"),
        pytest.raises(SpoolFullError),
    ):
        spool.append(raw)
    assert spool.status().spooled_events == fits > 0
    assert spool.path.stat().st_size <= 1000
    assert spool.refused == 1
    assert "is full" in caplog.text


def test_full_spool_counts_dropped_events_and_the_product_still_answers(
    tmp_path: Path, server: RedisProcess
) -> None:
    app, guard = _app(_settings(tmp_path, server.url, spool_max_bytes=1500))
    server.stop()
    try:
        responses = _post(app.test_client(), 20)
        assert {r.status_code for r in responses} == {200}
        counters = guard.counters
        assert counters.dropped > 0
        assert counters.spooled + counters.dropped == 20
        assert guard.capture_of().spool.status().spooled_events == counters.spooled
    finally:
        guard.close()


def _spool_with(tmp_path: Path, namespaces: list[str]) -> Spool:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**7)
    for i, ns in enumerate(namespaces):
        event = FeedbackEvent(
            event_id=f"ev-{i}", namespace=ns, kind="label", account_id="a", item_id="i", value=1
        )
        spool.append(event.to_json())
    return spool


def test_interrupted_replay_resumes_without_resending_finished_batches(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = _spool_with(tmp_path, ["a"] * 4 + ["b"] * 4)
    r.set(keys.inbox("b"), "not a stream")  # batch 2 fails (WRONGTYPE) mid-replay
    with pytest.raises(redis.ResponseError):
        spool.replay(r, cap=1000, batch=4)
    r.delete(keys.inbox("b"))
    assert spool.replay(r, cap=1000, batch=4).replayed == 4
    assert r.xlen(keys.inbox("a")) == 4
    assert r.xlen(keys.inbox("b")) == 4
    assert not spool.has_pending()


def test_events_spooled_during_a_replay_wait_for_the_next_one(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = _spool_with(tmp_path, ["a"] * 3)
    r.set(keys.inbox("a"), "not a stream")
    with pytest.raises(redis.ResponseError):
        spool.replay(r, cap=1000, batch=10)
    spool.append(FeedbackEvent(kind="vote", account_id="x", item_id="y", value=True).to_json())
    r.delete(keys.inbox("a"))
    assert spool.replay(r, cap=1000, batch=10).replayed == 4
    assert r.xlen(keys.inbox("a")) == 3
    assert r.xlen(keys.inbox("default")) == 1


def test_torn_line_is_quarantined_and_the_next_event_survives(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**7)
    spool.path.write_bytes(b'{"event_id": "half-writ')  # a crash mid-append
    spool.append(FeedbackEvent(kind="vote", account_id="x", item_id="y", value=True).to_json())
    result = spool.replay(r, cap=1000, batch=10)
    assert (result.replayed, result.bad) == (1, 1)
    assert spool.status().bad_events == 1


def test_concurrent_replays_do_not_both_send(tmp_path: Path, r: redis.Redis[bytes]) -> None:
    spool = _spool_with(tmp_path, ["a"] * 50)
    results = []

    def run() -> None:
        results.append(spool.replay(r, cap=1000, batch=5))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(res.replayed for res in results) == 50
    assert r.xlen(keys.inbox("a")) == 50


APPENDER = """
import sys
from feedbackguard.capture.spool import Spool
spool = Spool(sys.argv[1], max_bytes=10**8)
for i in range(int(sys.argv[3])):
    spool.append(('{"kind":"vote","account_id":"p%s","item_id":"%d","value":1}'
                  % (sys.argv[2], i)).encode())
"""


@pytest.mark.slow
def test_several_processes_append_whole_lines(tmp_path: Path, r: redis.Redis[bytes]) -> None:
    path = tmp_path / "spool.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(p), "100"])
        for p in range(4)
    ]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    result = Spool(path, max_bytes=10**8).replay(r, cap=10**6, batch=64)
    assert (result.replayed, result.bad) == (400, 0)


def test_cli_status_and_replay(tmp_path: Path, r: redis.Redis[bytes], redis_url: str) -> None:
    _spool_with(tmp_path, ["default"] * 3)
    env = {
        "FEEDBACKGUARD_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_HOME": str(tmp_path / "home"),
    }
    runner = CliRunner()
    status = runner.invoke(main, ["spool", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "3 event(s) waiting" in status.output
    replay = runner.invoke(main, ["spool", "replay"], env=env)
    assert replay.exit_code == 0, replay.output
    assert "replayed 3" in replay.output
    assert r.xlen(keys.inbox("default")) == 3


# -- backpressure: a full inbox is never trimmed ------------------------------------------


@pytest.fixture
def full_inbox_app(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> Iterator[tuple[flask.Flask, FeedbackGuard]]:
    app, guard = _app(_settings(tmp_path, redis_url, inbox_maxlen=5))
    yield app, guard
    guard.close()


def test_events_past_the_inbox_cap_are_spooled_and_none_is_trimmed(
    full_inbox_app: tuple[flask.Flask, FeedbackGuard], r: redis.Redis[bytes]
) -> None:
    app, guard = full_inbox_app
    responses = _post(app.test_client(), 12)
    assert {resp.status_code for resp in responses} == {200}
    assert _event_ids(r) == [f"ev-{i}" for i in range(5)]
    assert guard.counters.spooled == 7
    assert guard.capture_of().spool.status().spooled_events == 7


def test_full_inbox_in_reject_mode_answers_503_with_retry_after(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    app, guard = _app(_settings(tmp_path, redis_url, inbox_maxlen=2, inbox_overflow="reject"))
    responses = _post(app.test_client(), 5)
    guard.close()
    assert [resp.status_code for resp in responses] == [200, 200, 503, 503, 503]
    assert responses[-1].headers["Retry-After"] == "3600"
    assert responses[-1].get_json() == {"error": "feedback_backlog"}
    assert guard.counters.refused == 3
    assert len(_event_ids(r)) == 2


def test_capture_resumes_once_workers_drain_the_inbox(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    clock = FakeClock()
    settings = _settings(tmp_path, redis_url, inbox_maxlen=2, breaker_cooldown_s=0.05)
    app, guard = _app(settings, clock)
    client = app.test_client()
    _post(client, 4)
    r.delete(keys.inbox("default"))  # the workers caught up
    clock.now += 0.1  # the breaker's cooldown is over
    _post(client, 1, start=10)
    guard.close()
    assert _event_ids(r) == ["ev-10"]


def test_spool_replay_stops_at_the_inbox_cap_and_resumes_later(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**8)
    events = [FeedbackEvent(kind="label", account_id="a", item_id="i", value=1) for _ in range(10)]
    spool.append_many([e.to_json() for e in events])
    first = spool.replay(r, cap=3, batch=2)
    assert (first.replayed, first.full) == (3, True)
    assert r.xlen(keys.inbox("default")) == 3
    assert spool.has_pending()
    r.delete(keys.inbox("default"))
    second = spool.replay(r, cap=100, batch=2)
    assert (second.replayed, second.full) == (7, False)
    assert not spool.has_pending()


def test_a_replay_cut_by_the_cap_sets_each_unreadable_line_aside_once(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**8)
    event = FeedbackEvent(kind="label", account_id="a", item_id="i", value=1)
    spool.append_many([event.to_json(), event.to_json(), b"{torn", event.to_json()])
    first = spool.replay(r, cap=1, batch=10)
    assert (first.replayed, first.bad, first.full) == (1, 0, True)
    r.delete(keys.inbox("default"))
    second = spool.replay(r, cap=100, batch=10)
    assert (second.replayed, second.bad, second.full) == (2, 1, False)
    assert spool.status().bad_events == 1


# Keeps Redis busy for ARGV[1] ms (a slow command, as a real overload would).
BUSY_SCRIPT = """
local function now() local t = redis.call('TIME') return t[1] * 1000 + t[2] / 1000 end
local start = now()
repeat until now() - start >= tonumber(ARGV[1])
return 1
"""


def test_concurrent_requests_never_push_the_inbox_past_its_cap(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    settings = _settings(tmp_path, redis_url, inbox_maxlen=30, breaker_cooldown_s=0.001)
    app, guard = _app(settings, FakeClock(step_s=1.0))  # every request may try the inbox
    threads = [
        threading.Thread(target=_post, args=(app.test_client(), 25, 100 * t)) for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    guard.close()
    assert r.xlen(keys.inbox("default")) == 30
    assert guard.capture_of().spool.status().spooled_events == 100 - 30


def test_a_write_that_times_out_after_it_was_sent_is_spooled_as_unsure(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    app, guard = _app(_settings(tmp_path, redis_url, redis_timeout_ms=50.0))
    client = app.test_client()
    _post(client, 1)  # the connection is open
    busy = threading.Thread(target=r.eval, args=(BUSY_SCRIPT, 0, 400))
    busy.start()  # Redis is busy: the capture times out, then its write lands
    time.sleep(0.1)
    _post(client, 1, start=1)
    busy.join()
    deadline = time.monotonic() + 2.0  # Redis runs the late write in its next loop
    while len(_event_ids(r)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _event_ids(r) == ["ev-0", "ev-1"]
    assert guard.counters.spooled == 1
    assert guard.replay_spool() == 1
    guard.close()
    entries = r.xrange(keys.inbox("default"))
    assert [inbox.UNSURE in fields for _, fields in entries] == [False, False, True]
    assert _event_ids(r) == ["ev-0", "ev-1", "ev-1"]


def test_an_unreachable_redis_spools_events_as_sure(
    outage: tuple[flask.Flask, FeedbackGuard],
) -> None:
    app, guard = outage
    _post(app.test_client(), 2)
    assert guard.capture_of().spool.path.read_bytes().startswith(b'{"')


def test_unsure_spool_lines_reach_workers_marked_unsure(
    tmp_path: Path, r: redis.Redis[bytes]
) -> None:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**7)
    event = FeedbackEvent(kind="label", account_id="a", item_id="i", value=1)
    spool.append_many([event.to_json()], unsure=True)
    spool.append_many([event.to_json()])
    assert spool.replay(r, cap=100, batch=10).replayed == 2
    inbox.ensure_group(r, "default")
    entries = inbox.read_batch(r, "default", "c", count=10, block_ms=None, claim_idle_ms=1000)
    assert [(e.raw, e.unsure) for e in entries] == [
        (event.to_json(), True),
        (event.to_json(), False),
    ]


def test_capture_reloads_its_script_when_redis_lost_it(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    app, guard = _app(_settings(tmp_path, redis_url))
    client = app.test_client()
    _post(client, 1)
    r.script_flush()  # as after a Redis restart
    _post(client, 1, start=1)
    guard.close()
    assert _event_ids(r) == ["ev-0", "ev-1"]
    assert guard.counters.spooled == 0


def test_buffered_capture_spools_what_a_full_inbox_refuses_even_in_reject_mode(
    tmp_path: Path, r: redis.Redis[bytes], redis_url: str
) -> None:
    settings = _settings(
        tmp_path, redis_url, inbox_maxlen=2, inbox_overflow="reject", capture_mode="buffered"
    )
    app, guard = _app(settings)
    responses = _post(app.test_client(), 5)
    guard.flush()
    guard.close()
    assert {resp.status_code for resp in responses} == {200}  # answered before the write
    assert len(_event_ids(r)) == 2
    assert guard.capture_of().spool.status().spooled_events == 3
