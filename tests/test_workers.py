"""Real worker processes: nothing lost when one is killed, replay decides everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis

from feedbackguard import keys
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.replay import ReplayFileError, push, read_events, replay
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def worker_env(settings: Settings, store_url: str, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        FEEDBACKGUARD_REDIS_URL=str(settings.redis_url),
        FEEDBACKGUARD_HOME=str(settings.home),
        FEEDBACKGUARD_STORE_URL=store_url,
        **extra,
    )


def spawn_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "feedbackguard", "worker"], env=env)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    r: redis.Redis[bytes], settings: Settings, store_url: str, make_event: MakeEvent
) -> None:
    events = [make_event(at=i * 0.01) for i in range(6000)]
    inbox.ensure_group(r, NS)
    env = worker_env(settings, store_url, FEEDBACKGUARD_CLAIM_IDLE_MS="500")
    first = spawn_worker(env)
    push(r, events, cap=1_000_000)
    wait_for(lambda: ledger.stats(r, NS).get("decided", 0) > 0, timeout_s=30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert ledger.stats(r, NS).get("decided", 0) < len(events), "killed too late to matter"
    second = spawn_worker(env)
    try:
        wait_for(lambda: inbox.backlog(r, NS) == 0, timeout_s=60)
        due = events[-1].received_at.timestamp() + PolicyStore(r).current().policy.probation_s
        pipe = r.pipeline()
        ledger.advance_clock(pipe, NS, due)
        pipe.execute()
        wait_for(lambda: r.zcard(keys.pending(NS)) == 0, timeout_s=60)
        wait_for(lambda: r.zcard(keys.releasing(NS)) == 0, timeout_s=30)
    finally:
        second.terminate()
        second.wait()
    stats = ledger.stats(r, NS)
    assert stats["decided"] == len(events)
    store = Store(store_url, b"unused-for-counting-rows-00000000")
    try:
        assert store.count() == stats["admitted"]
    finally:
        store.close()


@pytest.mark.slow
def test_replay_gives_every_event_a_final_status(
    r: redis.Redis[bytes], settings: Settings, tmp_path: Path, make_event: MakeEvent
) -> None:
    events = [make_event(at=i) for i in range(300)]
    events += [make_event(at=400 + i, account_id="flooder") for i in range(200)]
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    out = tmp_path / "decisions.jsonl"
    with out.open("wb") as fh:
        report = replay(source, settings, decisions_out=fh)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["event_id"] for line in lines] == [e.event_id for e in events]
    assert {line["status"] for line in lines} == {"admitted", "rejected"}
    assert report.statuses["admitted"] + report.statuses["rejected"] == 500
    flooded = [line for line in lines[300:] if line["status"] == "rejected"]
    assert flooded
    assert flooded[0]["reasons"][0]["code"] == "rate_limited.account"


def test_replay_refuses_an_implausible_account_creation_date(tmp_path: Path) -> None:
    source = tmp_path / "dates.jsonl"
    line = '{"kind": "label", "account_id": "a", "item_id": "i", "value": 1, '
    source.write_text(
        line + '"account_created_at": "2020-05-01T00:00:00Z"}\n'
        + line + '"account_created_at": "0001-01-01T00:00:00Z"}\n'
    )  # fmt: skip
    with pytest.raises(ReplayFileError, match=r"line 2: account_created_at: .*epoch"):
        read_events(source)


def test_replay_file_errors_name_the_line_and_field(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    valid = '{"kind": "label", "account_id": "a", "item_id": "i", "value": 1}'
    source.write_text(valid + '\n{"kind": "x"}\n')
    with pytest.raises(ReplayFileError, match=r"line 2: kind"):
        read_events(source)
