"""Cost of the rate-limit check: µs per event and Redis bytes per active account.

With the default policy (six limits, new-account tier by first seen):
  1. µs/event of `RateLimitCheck` on 500-event batches of honest-looking traffic
     (Python key building + the one EVALSHA), after a warm-up, median of --runs:
     `us_per_event` on a keyspace pre-grown to steady-state size, `cold_us_per_event`
     on an empty Redis (so also paying for its tables growing);
  2. Redis memory per active account: INFO used_memory before and after 10,000
     accounts send one event each, every account with its own IP, /24, device and
     item (the worst case: no key is shared) and without `account_created_at`
     (so each account also has a first-seen key); plus MEMORY USAGE of each kind of
     key, and a check that every key has a TTL.
The last line printed is one JSON object with every figure.

    python benchmarks/ratelimit_cost.py [--events 100000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import KINDS, FeedbackEvent
from feedbackguard.policy import Policy

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NS = "bench"
BATCH = 500
DAY_S = 86_400


def traffic(n: int, accounts: int, seed: int = 7) -> list[FeedbackEvent]:
    """A day of honest-looking feedback: mildly skewed accounts, shared IPs and items."""
    rng = random.Random(seed)
    times = sorted(rng.uniform(0, DAY_S) for _ in range(n))
    events = []
    for i, at in enumerate(times):
        # a few busy accounts, most with a handful of events
        a = rng.randrange(accounts // 100) if rng.random() < 0.1 else rng.randrange(accounts)
        events.append(
            FeedbackEvent(
                namespace=NS,
                kind=KINDS[rng.randrange(len(KINDS))],
                account_id=f"acct-{a}",
                account_created_at=T0 - timedelta(days=a % 400) if a % 3 else None,
                item_id=f"item-{rng.randrange(n // 20 + 1)}",
                value="spam",
                ip=f"10.{a % 250}.{a // 250 % 250}.{a % 7}" if i % 10 else f"2001:db8::{a:x}",
                device_id=f"dev-{a}" if a % 2 else None,
                received_at=T0 + timedelta(seconds=at),
            )
        )
    return events


FILLER_KEYS = 200_000
"""Keys with a TTL that pre-grow the keyspace, as a Redis in steady state has: without
them every pass also pays for the main and expires tables doubling from empty."""

_FILL = """
for i = 1, tonumber(ARGV[1]) do
  redis.call('PSETEX', ARGV[2] .. i, 86400000, i)
end
"""


def us_per_event(
    r: redis.Redis[bytes], events: list[FeedbackEvent], runs: int, *, warm: bool
) -> dict[str, float]:
    """Cost of the check per event: the whole call, and the script's share of it (from
    the server's own command statistics), median and best of `runs` passes over the
    same traffic, each in a fresh namespace. The best pass is the least disturbed by
    other processes on the machine."""
    r.flushdb()
    if warm:
        r.register_script(_FILL)(args=[FILLER_KEYS, "filler:"])
    check = RateLimitCheck()
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    totals: list[float] = []
    scripts: list[float] = []
    limited = 0
    for run in range(runs + 1):  # the first pass warms up: script load, plans, IP cache
        ctx = CheckContext(redis=r, policy=Policy.default(), namespace=f"{NS}{run}")
        r.config_resetstat()
        limited = 0
        started = time.perf_counter()
        for batch in batches:
            limited += len(check(batch, ctx))
        totals.append((time.perf_counter() - started) / len(events) * 1e6)
        stats = r.info("commandstats").get("cmdstat_evalsha", {"usec": 0})
        scripts.append(int(stats["usec"]) / len(events))
    totals, scripts = totals[1:], scripts[1:]
    prefix = "" if warm else "cold_"
    return {
        f"{prefix}us_per_event": round(statistics.median(totals), 2),
        f"{prefix}us_per_event_best": round(min(totals), 2),
        f"{prefix}script_us_per_event": round(statistics.median(scripts), 2),
        f"{prefix}limited_events": limited,
    }


def bytes_per_account(r: redis.Redis[bytes], accounts: int) -> dict[str, object]:
    """Memory of the rate-limit state of `accounts` accounts sharing no key."""
    r.flushdb()
    check = RateLimitCheck()
    ctx = CheckContext(redis=r, policy=Policy.default(), namespace=NS)
    before = int(r.info("memory")["used_memory"])
    for start in range(0, accounts, BATCH):
        batch = [
            FeedbackEvent(
                namespace=NS,
                kind="label",
                account_id=f"account-{i:08d}",
                item_id=f"item-{i:08d}",
                value="x",
                ip=f"10.{i >> 8 & 255}.{i & 255}.1",
                device_id=f"device-{i:08d}",
                received_at=T0 + timedelta(seconds=i),
            )
            for i in range(start, min(accounts, start + BATCH))
        ]
        check(batch, ctx)
    after = int(r.info("memory")["used_memory"])
    usage: dict[str, int] = {}
    total_usage = 0
    without_ttl = 0
    for key in r.scan_iter(match=f"fg:{{{NS}}}:*", count=1000):
        size = int(r.memory_usage(key, samples=0) or 0)
        total_usage += size
        kind = key.decode().split(":")[3]
        usage[kind] = size
        without_ttl += r.pttl(key) < 0
    return {
        "redis_bytes_per_account": round((after - before) / accounts),
        "memory_usage_bytes_per_account": round(total_usage / accounts),
        "memory_usage_per_key": usage,
        "keys_without_ttl": without_ttl,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis-url", help="a server to use (its database is flushed)")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if not url:
        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="fg-bench-")))
        url = server.start()
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    try:
        events = traffic(args.events, accounts=max(1000, args.events // 5))
        cost = us_per_event(r, events, args.runs, warm=False)
        cost.update(us_per_event(r, events, args.runs, warm=True))
        print(f"check: {cost}", file=sys.stderr)
        memory = bytes_per_account(r, args.accounts)
        print(f"memory: {memory}", file=sys.stderr)
        r.flushdb()
    finally:
        r.close()
        if server is not None:
            server.stop()
    print(json.dumps({**cost, "batch": BATCH, "events": len(events), **memory}))


if __name__ == "__main__":
    main()
