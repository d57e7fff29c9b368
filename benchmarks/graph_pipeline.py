"""The account graph inside the pipeline: cost at ingest, analysis from Redis, catch rate.

On a private embedded Redis and a SQLite store (temporary FEEDBACKGUARD_HOME):
  1. `GraphCheck` per batch of 500 (window append + risk lookups): microseconds per event;
  2. `GraphAnalyser` over a window kept in Redis of 100k and 1M events (load, decode,
     every detector, findings written back): seconds, and Redis bytes per event;
  3. the real `Pipeline` (every default check and analyser, default policy) on two
     days of honest traffic with three attacks mixed in — a fresh Sybil swarm, an
     aged brigade on residential IPs with camouflage, and a fresh account flood —
     ingested, analysed every 5 minutes of event time, released: share of each
     population admitted, sent to review, rejected.
The last line is one JSON object.

    python benchmarks/graph_pipeline.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from feedbackguard import inbox_writer
from feedbackguard.checks.base import AnalysisContext, CheckContext
from feedbackguard.checks.graph import GraphAnalyser, GraphCheck
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = 3600.0
BATCH = 500


def honest_events(n: int, accounts: int, days: float, seed: int = 3) -> list[FeedbackEvent]:
    """Heavy-tailed honest traffic: old accounts, own IPs (a few shared NATs), many items."""
    rng = random.Random(seed)
    weights = [1.0 / (a + 1) ** 0.8 for a in range(accounts)]
    chosen = rng.choices(range(accounts), weights=weights, k=n)
    items = max(50, n // 10)
    out = []
    for a in chosen:
        nat = a % 40 == 0  # 1 in 40 behind one of 5 campus / carrier NAT addresses
        out.append(
            FeedbackEvent(
                kind="label",
                account_id=f"h{a}",
                account_created_at=T0 - timedelta(days=30 + (a * 7919) % 2000),
                item_id=f"i{int(rng.paretovariate(1.2) * 7) % items}",
                value=rng.choice(["spam", "ham"]),
                ip=f"100.64.0.{a % 5}" if nat else f"{11 + a % 200}.{a % 251}.{a % 13}.{a % 250}",
                received_at=T0 + timedelta(seconds=rng.uniform(0, days * 86400)),
            )
        )
    return out


def attack_events() -> dict[str, list[FeedbackEvent]]:
    rng = random.Random(11)
    out: dict[str, list[FeedbackEvent]] = {"swarm": [], "brigade": [], "flood": []}
    for m in range(60):  # fresh swarm: 3 /24s, 8 targets, within an hour
        for t in range(8):
            out["swarm"].append(
                FeedbackEvent(
                    kind="label",
                    account_id=f"sybil{m}",
                    account_created_at=T0 + timedelta(hours=20),
                    item_id=f"target{t}",
                    value="ham",
                    ip=f"203.0.{113 + m % 3}.{m}",
                    received_at=T0 + timedelta(hours=26, seconds=m * 40 + t * 7),
                )
            )
    for m in range(40):  # aged brigade, residential IPs, half camouflage
        for t in range(6):
            out["brigade"].append(
                FeedbackEvent(
                    kind="label",
                    account_id=f"sleeper{m}",
                    account_created_at=T0 - timedelta(days=400 + m),
                    item_id=f"victim{t}",
                    value="spam",
                    ip=f"{70 + m}.{m * 3 % 250}.{m % 200}.{m + 1}",
                    received_at=T0 + timedelta(hours=30, seconds=rng.uniform(0, 3 * HOUR)),
                )
            )
            out["brigade"].append(
                FeedbackEvent(
                    kind="label",
                    account_id=f"sleeper{m}",
                    account_created_at=T0 - timedelta(days=400 + m),
                    item_id=f"i{rng.randrange(5000)}",
                    value=rng.choice(["spam", "ham"]),
                    ip=f"{70 + m}.{m * 3 % 250}.{m % 200}.{m + 1}",
                    received_at=T0 + timedelta(seconds=rng.uniform(0, 2 * 86400)),
                )
            )
    for k in range(400):  # one fresh account flooding
        out["flood"].append(
            FeedbackEvent(
                kind="label",
                account_id="flooder",
                account_created_at=T0 + timedelta(hours=10),
                item_id=f"i{rng.randrange(5000)}",
                value="ham",
                ip="198.18.0.1",
                received_at=T0 + timedelta(hours=12, seconds=k * 5),
            )
        )
    return out


def check_cost(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> float:
    check = GraphCheck()
    ctx = CheckContext(redis=r, policy=Policy.default(), namespace="cost")
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        check(events[i : i + BATCH], ctx)
    return (time.perf_counter() - started) / len(events) * 1e6


def analysis_cost(r: redis.Redis[bytes], events: list[FeedbackEvent], ns: str) -> dict[str, float]:
    policy = Policy.default()
    ctx = CheckContext(redis=r, policy=policy, namespace=ns)
    check = GraphCheck()
    before = r.info("memory")["used_memory"]
    for i in range(0, len(events), 5000):
        check(events[i : i + 5000], ctx)
    window_bytes = r.info("memory")["used_memory"] - before
    now = max(e.received_at.timestamp() for e in events)
    actx = AnalysisContext(redis=r, policy=policy, namespace=ns, now=now, store=None)  # type: ignore[arg-type]
    started = time.perf_counter()
    verdicts = GraphAnalyser()(actx)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "bytes_per_event": round(window_bytes / len(events)),
        "flagged_events": len(verdicts),
    }


def run_pipeline(r: redis.Redis[bytes], home: Path) -> dict[str, dict[str, object]]:
    r.flushdb()
    good = honest_events(100_000, 10_000, days=2)
    attacks = attack_events()
    population = {e.event_id: "honest" for e in good}
    for name, events in attacks.items():
        population.update({e.event_id: name for e in events})
    stream = sorted(good + [e for es in attacks.values() for e in es], key=lambda e: e.received_at)
    with Store(f"sqlite:///{home / 'bench.db'}", b"k" * 32) as store:
        pipeline = Pipeline(
            r=r,
            store=store,
            policies=PolicyStore(r, cache_s=60),
            checks=default_checks(),
            analysers=default_analysers(),
        )
        interval = pipeline.policies.current().policy.analysis.interval_s
        next_analysis = stream[0].received_at.timestamp() + interval
        started = time.perf_counter()
        for i in range(0, len(stream), BATCH):
            chunk = stream[i : i + BATCH]
            pipe = r.pipeline(transaction=False)
            inbox_writer.append(pipe, chunk)
            pipe.execute()
            while pipeline.ingest_batch("default", "bench").entries:
                pass
            if chunk[-1].received_at.timestamp() >= next_analysis:
                pipeline.analyse("default")
                while pipeline.release("default"):
                    pass
                next_analysis += interval
        end = stream[-1].received_at.timestamp() + pipeline.policies.current().policy.probation_s
        pipe = r.pipeline()
        ledger.advance_clock(pipe, "default", end)
        pipe.execute()
        pipeline.analyse("default")
        while pipeline.release("default"):
            pass
        seconds = time.perf_counter() - started
    outcome: dict[str, Counter[str]] = {}
    why: dict[str, Counter[str]] = {}
    ids = list(population)
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        for event_id, rec in zip(chunk, ledger.load(r, "default", chunk), strict=True):
            status = rec.decision.status if rec else "missing"
            outcome.setdefault(population[event_id], Counter())[status] += 1
            if rec and status != "admitted":
                codes = {x.code for x in rec.decision.reasons}
                why.setdefault(population[event_id], Counter()).update(codes)
    result: dict[str, dict[str, object]] = {}
    for name, counts in outcome.items():
        total = sum(counts.values())
        result[name] = {
            "events": total,
            "admitted": round(counts["admitted"] / total, 4),
            "review": round(counts["review"] / total, 4),
            "rejected": round((counts["rejected"] + counts["quarantined"]) / total, 4),
            "reasons": dict(why.get(name, Counter()).most_common(6)),
        }
    result["run"] = {"events": len(stream), "seconds": round(seconds, 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pipeline-only", action="store_true", help="only part 3")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-graph-pipeline-"))
    server = EmbeddedRedis(home)
    r: redis.Redis[bytes] = redis.Redis.from_url(server.start())
    try:
        r.flushdb()
        if args.pipeline_only:
            print(json.dumps(run_pipeline(r, home)))
            return
        cost = check_cost(r, honest_events(100_000, 10_000, days=2))
        print(f"GraphCheck: {cost:.1f} us/event", flush=True)
        analysis = {}
        for n in sorted({100_000, args.events}):
            r.flushdb()
            analysis[n] = analysis_cost(r, honest_events(n, n // 10, days=7), f"a{n}")
            print(f"analysis of {n:,} events: {analysis[n]}", flush=True)
        outcome = run_pipeline(r, home)
        print(json.dumps(outcome, indent=1), flush=True)
    finally:
        r.close()
        server.stop()
    print(
        json.dumps(
            {
                "graph_check_us_per_event": round(cost, 1),
                "analysis_from_redis": {str(k): v for k, v in analysis.items()},
                "pipeline": outcome,
            }
        )
    )


if __name__ == "__main__":
    main()
