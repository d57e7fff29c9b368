"""Events/s through ingest + decision + release + store, with rate limits on.

Runs, in one go, on a private Redis (embedded unless --redis-url) and a SQLite store
in a temporary FEEDBACKGUARD_HOME:
  1. feedbackguard's pipeline with 1 and with 2 `feedbackguard worker` processes:
     events are pushed into the inbox as capture would, and the clock runs until
     every event has a final status (probation released into the store);
  2. the naive design, one RQ job per event (SimpleWorker), on a smaller sample;
  3. Redis memory per active account (rate-limit state), from INFO used_memory, and
     the Redis CPU per event of each pipeline run (INFO used_cpu_user + used_cpu_sys:
     Redis is single-threaded, so 1e6 / that figure caps events/s on one core);
  4. `feedbackguard replay` of a 100,000-event file, end to end.
The last line is one JSON object with every figure.

    python benchmarks/pipeline_throughput.py [--events 200000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis
from rq import Queue

from feedbackguard import keys
from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.decide import decide
from feedbackguard.pipeline.replay import push, replay, start_workers, stop_workers
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NS = "bench"


def generate(n: int, accounts: int, seed: int = 7) -> list[FeedbackEvent]:
    """Honest-looking traffic over a day: heavy-tailed accounts, many items and IPs."""
    rng = np.random.default_rng(seed)
    account = np.minimum(rng.zipf(1.6, n) - 1, accounts - 1)
    account = (account * 2654435761) % accounts  # spread the heavy hitters over ids
    item = rng.integers(0, max(1, n // 20), n)
    seconds = np.sort(rng.uniform(0, 86_400, n))
    created = rng.uniform(1, 3 * 365, accounts)
    labels = np.array(["spam", "ham", "billing", "bug", "other"])
    value = labels[rng.integers(0, len(labels), n)]
    events = []
    for i in range(n):
        a = int(account[i])
        events.append(
            FeedbackEvent(
                namespace=NS,
                kind="label",
                account_id=f"a{a}",
                account_created_at=T0 - timedelta(days=float(created[a])),
                item_id=f"i{int(item[i])}",
                value=str(value[i]),
                model_output={"label": "spam", "confidence": 0.8},
                ip=f"{10 + a % 200}.{(a // 200) % 250}.{a % 251}.{a % 249}",
                device_id=f"d{a}",
                received_at=T0 + timedelta(seconds=float(seconds[i])),
            )
        )
    return events


def wait_final(r: redis.Redis[bytes], total: int, last_due: float) -> None:
    """Until every event left the inbox, then (clock moved) left probation."""
    while inbox.backlog(r, NS):
        time.sleep(0.05)
    pipe = r.pipeline()
    ledger.advance_clock(pipe, NS, last_due)
    pipe.execute()
    while r.zcount(keys.pending(NS), "-inf", last_due) or r.zcard(keys.releasing(NS)):
        time.sleep(0.05)


def redis_cpu_s(r: redis.Redis[bytes]) -> float:
    """CPU seconds the Redis server has used so far (INFO cpu)."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_pipeline(
    settings: Settings, url: str, events: list[FeedbackEvent], workers: int
) -> tuple[float, float]:
    """(events/s, Redis CPU microseconds per event) from the push to the last release."""
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    Path(settings.home, "store.db").unlink(missing_ok=True)
    probation = PolicyStore(r).current().policy.probation_s
    inbox.ensure_group(r, NS)
    procs = start_workers(workers, settings, url)
    time.sleep(2.0)  # let the workers import and register before the clock starts
    started = time.perf_counter()
    cpu = redis_cpu_s(r)
    push(r, events, settings.inbox_maxlen)
    wait_final(r, len(events), events[-1].received_at.timestamp() + probation)
    elapsed = time.perf_counter() - started
    cpu = redis_cpu_s(r) - cpu
    stop_workers(procs)
    decided = ledger.stats(r, NS).get("decided", 0)
    if decided != len(events):
        raise SystemExit(f"lost events: decided {decided} of {len(events)}")
    r.close()
    return len(events) / elapsed, cpu * 1e6 / len(events)


# --- the naive design: one RQ job per event -------------------------------------------


def naive_job(raw: bytes) -> str:
    """Everything the pipeline does for one event, as one RQ job."""
    settings = Settings()
    r: redis.Redis[bytes] = redis.Redis.from_url(os.environ["FEEDBACKGUARD_REDIS_URL"])
    event = FeedbackEvent.from_json(raw)
    current = PolicyStore(r).current()
    ctx = CheckContext(redis=r, policy=current.policy, namespace=event.namespace)
    findings = RateLimitCheck()([event], ctx)
    decision = decide(
        event.event_id, findings.get(0, []), current.policy.thresholds, current.version,
        datetime.now(UTC),
    )  # fmt: skip
    r.set(keys.record(event.namespace, event.event_id), raw)
    if decision.status == "pending":
        store = Store.from_settings(settings)
        admitted = decision.model_copy(update={"status": "admitted"})
        store.admit([(event, [decision, admitted])])
        store.close()
    r.close()
    return decision.status


def run_naive(settings: Settings, url: str, events: list[FeedbackEvent]) -> float:
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    queue = Queue("naive", connection=r)
    for event in events:
        queue.enqueue("pipeline_throughput.naive_job", event.to_json(), result_ttl=0)
    env = dict(
        os.environ,
        FEEDBACKGUARD_REDIS_URL=url,
        FEEDBACKGUARD_HOME=str(settings.home),
        PYTHONPATH=str(Path(__file__).resolve().parent),
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", "rq.worker.SimpleWorker",
         "--url", url, "-q", "naive", "--logging_level", "WARNING"],
        env=env, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    r.close()
    return len(events) / elapsed


def bytes_per_account(settings: Settings, url: str, accounts: int) -> float:
    """Rate-limit state per active account: many accounts, one item/ip/device each."""
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    current = PolicyStore(r).current()
    check = RateLimitCheck()
    ctx = CheckContext(redis=r, policy=current.policy, namespace=NS)
    before = int(r.info("memory")["used_memory"])
    for start in range(0, accounts, 500):
        batch = [
            FeedbackEvent(
                namespace=NS, kind="label", account_id=f"acct{i}", item_id="item", value="x",
                ip="192.0.2.1", device_id="dev", received_at=T0 + timedelta(seconds=i),
            )
            for i in range(start, min(accounts, start + 500))
        ]  # fmt: skip
        check(batch, ctx)
    after = int(r.info("memory")["used_memory"])
    r.close()
    return (after - before) / accounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-bench-"))
    url = args.redis_url or EmbeddedRedis(home).start()
    settings = Settings(home=home, redis_url=url, clock="events")
    events = generate(args.events, accounts=max(1000, args.events // 5))
    results: dict[str, float | None] = {}
    for workers in (1, 2):
        rate, redis_us = run_pipeline(settings, url, events, workers)
        results[f"events_per_s_{workers}w"] = round(rate)
        results[f"redis_cpu_us_per_event_{workers}w"] = round(redis_us, 1)
        print(
            f"pipeline, {workers} worker(s): {rate:,.0f} events/s, "
            f"Redis CPU {redis_us:,.1f} us/event",
            file=sys.stderr,
        )
    naive = run_naive(settings, url, events[: args.naive_events])
    results["naive_rq_events_per_s"] = round(naive, 1)
    print(f"naive, one RQ job per event: {naive:,.1f} events/s", file=sys.stderr)
    per_account = bytes_per_account(settings, url, 10_000)
    results["redis_bytes_per_account"] = round(per_account)
    print(f"Redis memory per active account: {per_account:,.0f} B", file=sys.stderr)
    replay_file = home / "replay.jsonl"
    with replay_file.open("wb") as fh:
        for event in generate(args.replay_events, accounts=args.replay_events // 5, seed=11):
            fh.write(event.to_json() + b"\n")
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    r.close()
    Path(home, "store.db").unlink(missing_ok=True)
    started = time.perf_counter()
    report = replay(replay_file, settings, workers=2)
    results["replay_100k_s"] = round(time.perf_counter() - started, 1)
    results["replay_events"] = report.events
    print(f"replay of {report.events:,} events: {results['replay_100k_s']} s", file=sys.stderr)
    if not args.redis_url:
        EmbeddedRedis(home).stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
