"""What the policy dry run costs, beside a plain replay of the same events.

In one run, on a private Redis (embedded unless --redis-url; its database is flushed)
and a SQLite store in a temporary FEEDBACKGUARD_HOME:
  1. a simulated stream (honest traffic over one day plus the `--scenario` attack) is
     written to a file and decided by `feedbackguard replay` (one worker process,
     every event to a final status): the plain replay's events/s;
  2. the policy dry run over the whole stream (`pipeline.dryrun.dry_run`: the events
     replayed twice in process, under the policy in force and under a candidate with a
     stricter account rate limit and review threshold, on scratch namespaces, and
     compared): its events/s (events replayed / wall seconds of the whole dry run).
The last line is one JSON object with every figure.

    python benchmarks/dry_run.py [--events 2000] [--scenario swarm] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import redis

from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.pipeline import dryrun, ledger
from feedbackguard.pipeline.replay import replay
from feedbackguard.policy.merge import proposed
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.simulate import QUICK, generate, write

NAMESPACE = "default"
CANDIDATE = {
    "thresholds": {"review": 0.4},
    "ratelimit": {"limits": [{"scope": "account", "limit": 60, "new_account_limit": 10}]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="honest events (about)")
    parser.add_argument("--scenario", default="swarm")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-bench-dry-run-"))
    url = args.redis_url or EmbeddedRedis(home).start()
    settings = Settings(home=home, redis_url=url, clock="events")
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    honest = replace(QUICK, events=args.events, accounts=max(300, args.events // 7))
    sim = generate(args.scenario, honest=honest, namespace=NAMESPACE)
    path = home / "stream.jsonl"
    write(sim, path)

    started = time.perf_counter()
    report = replay(path, settings, workers=1)
    replay_s = time.perf_counter() - started
    print(f"replay: {report.events:,} events in {replay_s:.1f} s", file=sys.stderr)

    current = PolicyStore(r, cache_s=0).current()
    candidate = proposed(current.policy, None, CANDIDATE)
    first = sim.events[0].received_at.timestamp()
    hours = (ledger.clock(r, NAMESPACE) - first) / 3600.0 + 1.0
    found = dryrun.dry_run(
        r,
        NAMESPACE,
        current,
        candidate,
        hours=hours,
        max_events=len(sim.events),
        batch_size=settings.batch_size,
    )
    print(
        f"dry run: {found.events:,} events in {found.seconds:.1f} s, {found.changed} would move",
        file=sys.stderr,
    )
    r.close()
    if not args.redis_url:
        EmbeddedRedis(home).stop()
    print(
        json.dumps(
            {
                "scenario": args.scenario,
                "events": report.events,
                "replay_s": round(replay_s, 2),
                "replay_events_per_s": round(report.events / replay_s),
                "dry_run_events": found.events,
                "dry_run_s": round(found.seconds, 2),
                "dry_run_events_per_s": round(found.events / found.seconds),
                "dry_run_changed": found.changed,
                "live_agreed": found.live_agreed,
                "live_compared": found.live_compared,
            }
        )
    )


if __name__ == "__main__":
    main()
