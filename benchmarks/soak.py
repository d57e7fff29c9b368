"""Soak: capture at twice the sustainable rate, with hostile requests mixed in.

On a private Redis (embedded) and a SQLite store in a temporary FEEDBACKGUARD_HOME:
  1. calibration: capture as fast as the load threads can for `--calibrate-s`, with
     one `feedbackguard worker`, and measure the rate events are decided (R). On a
     2-core machine the Python load threads, capture and the worker share the CPU,
     so R is what this machine sustains end to end;
  2. soak: keep capturing flat out for `--duration-s` through the real Flask
     extension while the worker is frozen (SIGSTOP) for `--stall-s` of every
     `--stall-every-s` (a deploy, a GC pause, a slow store): the pipeline then
     sustains R (1 - stall share), so the offered load is about twice what it can
     take. The inbox cap is small (`--cap-s` seconds of R), so backpressure has to
     work: past the cap capture spools, and the spool is replayed as workers catch up;
     one thread sends hostile requests (malformed and oversized bodies, unicode edge
     cases, spoofed X-Forwarded-For, replayed idempotency keys with other bodies);
     Redis memory, inbox length and worker RSS are sampled every few seconds;
  3. drain: load stops, the spool is replayed, the clock runs past every probation;
     then every sent event is counted: none may be missing or decided twice.
The policy is the default with short windows (probation 20 s, outcomes kept 60 s,
graph window 120 s) so that state reaches its steady size within the run. The last
line is one JSON object.

    python benchmarks/soak.py [--duration-s 600] [--threads 4] [--check]

With --check it exits with status 1 when an event was lost or decided twice, a
request got a 5xx, or the store does not verify. Decided twice is an upper bound
(see `duplicates` below): it is exact when no copy was held, that is when
--outcome-ttl-s is longer than the run (CI runs a short soak so).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import flask
import redis

from feedbackguard import FeedbackGuard, keys
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.replay import start_workers, stop_workers
from feedbackguard.policy import Analysis, Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

NS = "soak"
HOSTILE_NS = "soak-hostile"  # kept apart so honest events can be counted exactly
SAMPLE_S = 5.0
STATUSES = ("pending", "admitted", "review", "rejected", "quarantined")
PROBATION_S = 20.0
OUTCOME_TTL_S = 60.0
CLOCK_SKEW_S = 1.0
GRAPH_WINDOW_S = 120.0
HOSTILE_EVERY_S = 0.01


def make_app(settings: Settings) -> tuple[flask.Flask, FeedbackGuard]:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=settings)

    @app.post("/items/<item_id>/feedback")
    @guard.feedback(
        kind="label",
        account="header:X-User",
        item="view:item_id",
        value="json:label",
        namespace=NS,
    )
    def feedback(item_id: str) -> dict[str, Any]:
        return {"ok": item_id}

    @app.post("/hostile/<item_id>/feedback")
    @guard.feedback(
        kind="label",
        account="header:X-User",
        item="view:item_id",
        value="json:label",
        namespace=HOSTILE_NS,
    )
    def hostile(item_id: str) -> dict[str, Any]:
        return {"ok": item_id}

    return app, guard


class Load:
    """Honest feedback from several threads, flat out; records every event id sent."""

    def __init__(self, app: flask.Flask, threads: int) -> None:
        self.app = app
        self.threads = threads
        self.sent: list[list[str]] = [[] for _ in range(threads)]
        self.stop = threading.Event()
        self.errors = 0

    def run_for(self, seconds: float) -> float:
        """Run the load; the achieved rate."""
        before = self.total()
        self.stop.clear()
        workers = [
            threading.Thread(target=self._thread, args=(n,), daemon=True)
            for n in range(self.threads)
        ]
        started = time.perf_counter()
        for t in workers:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in workers:
            t.join()
        return (self.total() - before) / (time.perf_counter() - started)

    def total(self) -> int:
        return sum(len(s) for s in self.sent)

    def _thread(self, n: int) -> None:
        client = self.app.test_client()
        rng = random.Random(n)
        sent = self.sent[n]
        while not self.stop.is_set():
            event_id = f"s{n}-{len(sent)}"
            account = rng.randrange(50_000)
            response = client.post(
                f"/items/i{rng.randrange(20_000)}/feedback",
                json={"label": rng.choice(["a", "b", "c"])},
                headers={
                    "X-User": f"u{account}",
                    "Idempotency-Key": event_id,
                    "X-Forwarded-For": f"10.{account % 250}.{account % 7}.{account % 251}",
                },
            )
            if response.status_code == 200:
                sent.append(event_id)
            else:
                self.errors += 1


HOSTILE_BODIES: list[tuple[str, Any, dict[str, str]]] = [
    ("not json", b"{label: oops", {"Content-Type": "application/json"}),
    ("empty", b"", {"Content-Type": "application/json"}),
    ("huge label", {"label": "x" * 100_000}, {}),
    ("unicode", {"label": "\u202e\u0000\ud7ff\U0010ffff<script>alert(1)</script>"}, {}),
    ("nested", {"label": {"$gt": ""}}, {}),
    ("number", {"label": float("1e308")}, {}),
    ("spoofed xff", {"label": "a"}, {"X-Forwarded-For": "1.1.1.1, 2.2.2.2, 3.3.3.3"}),
    ("huge header", {"label": "a"}, {"X-Device-Id": "d" * 60_000}),
    ("no user", {"label": "a"}, {"X-User": ""}),
    ("long user", {"label": "a"}, {"X-User": "u" * 5000}),
]


class Hostile:
    """Malformed and abusive requests; counts what was tried and every 5xx."""

    def __init__(self, app: flask.Flask) -> None:
        self.app = app
        self.tried = 0
        self.server_errors = 0
        self.replayed_keys = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = self.app.test_client()
        n = 0
        while not self.stop.wait(HOSTILE_EVERY_S):
            _name, body, headers = HOSTILE_BODIES[n % len(HOSTILE_BODIES)]
            headers = {"X-User": "hostile", **headers}
            kwargs: dict[str, Any] = {"headers": headers}
            if isinstance(body, bytes):
                kwargs["data"] = body
            else:
                kwargs["json"] = body
            response = client.post(f"/hostile/h{n}/feedback", **kwargs)
            # The same idempotency key again with another body: a replay, not new feedback.
            again = client.post(
                "/hostile/h0/feedback",
                json={"label": f"other-{n}"},
                headers={"X-User": "hostile", "Idempotency-Key": "hostile-replayed"},
            )
            self.tried += 2
            self.replayed_keys += 1
            self.server_errors += (response.status_code >= 500) + (again.status_code >= 500)
            n += 1


def keys_by_kind(r: redis.Redis[bytes]) -> dict[str, int]:
    """Key count per kind (the key name without its ids), to see what holds memory."""
    counts: dict[str, int] = {}
    for key in r.scan_iter(count=10_000):
        parts = key.decode(errors="replace").split(":")
        kind = ":".join(parts[:4]) if parts[0] == "rq" else ":".join(parts[2:4])
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:15])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_by_kind(r: redis.Redis[bytes], top: int = 12) -> dict[str, dict[str, float]]:
    """Redis memory per kind of key (ids and other variable parts folded into `*`):
    which structure holds the memory when it grows."""
    out: dict[str, dict[str, float]] = {}
    batch: list[bytes] = []

    def flush() -> None:
        pipe = r.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(batch, pipe.execute(), strict=True):
            parts = key.decode(errors="replace").split(":")
            kind = ":".join(parts[:3] + ["*"] * (len(parts) > 3))
            slot = out.setdefault(kind, {"keys": 0, "mib": 0.0})
            slot["keys"] += 1
            slot["mib"] += (used or 0) / 2**20
        batch.clear()

    for key in r.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            flush()
    flush()
    ranked = sorted(out.items(), key=lambda kv: -kv[1]["mib"])[:top]
    return {k: {"keys": v["keys"], "mib": round(v["mib"], 2)} for k, v in ranked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--calibrate-s", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cap-s", type=float, default=2.0, help="inbox cap, in seconds of R")
    parser.add_argument("--stall-s", type=float, default=30.0)
    parser.add_argument("--stall-every-s", type=float, default=60.0)
    parser.add_argument(
        "--outcome-ttl-s",
        type=float,
        default=OUTCOME_TTL_S,
        help="how long final decision records stay (also the redelivery dedup horizon)",
    )
    parser.add_argument(
        "--clock-skew-s",
        type=float,
        default=CLOCK_SKEW_S,
        help="policy clock_skew_s (capture and workers share this machine's clock)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless nothing was lost or decided twice"
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fg-soak-"))
    server = EmbeddedRedis(home)
    url = server.start()
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    default = Policy.default()
    policy = default.model_copy(
        update={
            "probation_s": PROBATION_S,
            "outcome_ttl_s": args.outcome_ttl_s,
            "clock_skew_s": args.clock_skew_s,
            "analysis": Analysis(interval_s=5.0, max_lag_s=PROBATION_S),
            "graph": default.graph.model_copy(
                update={"window_s": GRAPH_WINDOW_S, "bucket_s": GRAPH_WINDOW_S / 4}
            ),
        }
    )
    PolicyStore(r).set(policy, author="soak")
    base = Settings(home=home, redis_url=url, clock="wall", spool_retry_s=1.0, trusted_proxies=1)
    inbox.ensure_group(r, NS)
    workers = start_workers(1, base, url)
    time.sleep(2.0)

    # 1. calibration: how fast the pipeline decides while capture runs flat out.
    app, guard = make_app(base)
    load = Load(app, args.threads)
    decided_before = ledger.stats(r, NS).get("decided", 0)
    t = time.perf_counter()
    offered_max = load.run_for(args.calibrate_s)
    while inbox.backlog(r, NS):
        time.sleep(0.1)
    sustainable = (ledger.stats(r, NS).get("decided", 0) - decided_before) / (
        time.perf_counter() - t
    )
    guard.close()
    print(f"calibration: capture {offered_max:.0f}/s, pipeline {sustainable:.0f} ev/s", flush=True)

    # 2. soak: flat out while the worker stalls half the time; a small inbox cap.
    cap = max(100, int(sustainable * args.cap_s))
    settings = base.model_copy(update={"inbox_maxlen": cap})
    app, guard = make_app(settings)
    load.app = app
    stalls = 0

    def stall() -> None:
        nonlocal stalls
        while not done.wait(args.stall_every_s - args.stall_s):
            workers[0].send_signal(signal.SIGSTOP)
            stalls += 1
            done.wait(args.stall_s)
            workers[0].send_signal(signal.SIGCONT)

    hostile = Hostile(app)
    hostile.thread.start()
    samples: list[dict[str, Any]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.perf_counter()
        while not done.wait(SAMPLE_S):
            keyspace = r.info("keyspace").get("db0", {})
            samples.append(
                {
                    "t": round(time.perf_counter() - started, 1),
                    "redis_mib": r.info("memory")["used_memory"] / 2**20,
                    "keys": keyspace.get("keys", 0),
                    "keys_with_ttl": keyspace.get("expires", 0),
                    "expired_stale_pct": r.info("stats").get("expired_stale_perc", 0.0),
                    "inbox": inbox.backlog(r, NS),
                    "pending": r.zcard(keys.pending(NS)),
                    "releasing": r.zcard(keys.releasing(NS)),
                    "worker_rss_mib": rss_kib(workers[0].pid) / 1024,
                    "spooled": guard.counters.spooled,
                }
            )
            print(json.dumps(samples[-1]), flush=True)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    staller = threading.Thread(target=stall, daemon=True)
    staller.start()
    achieved = load.run_for(args.duration_s / 2)
    memory_mid = memory_by_kind(r)
    achieved = (achieved + load.run_for(args.duration_s / 2)) / 2
    memory_end = memory_by_kind(r)
    done.set()
    staller.join()
    hostile.stop.set()
    hostile.thread.join()

    # 3. drain: spool back into the inbox, everything decided and released.
    while guard.capture_of().spool.has_pending() or inbox.backlog(r, NS):
        time.sleep(0.5)
    guard.close()
    while r.zcard(keys.pending(NS)) + r.zcard(keys.releasing(NS)):
        time.sleep(0.5)
    stop_workers(workers)

    # Records of final outcomes expire after outcome_ttl_s (that is what keeps memory
    # flat), so events are counted by the namespace's counters: every honest event
    # sent must be decided once or held (an unsure spooled copy too late to dedupe,
    # feedbackguard.cli.held), and nothing else may be decided in its namespace. A held
    # copy of an event that was decided counts as a duplicate here (the counters
    # cannot tell it apart), so `duplicates` is an upper bound.
    sent = [event_id for thread in load.sent for event_id in thread]
    stats = ledger.stats(r, NS)
    with Store.from_settings(base) as store:
        stored = store.count()
        verified = store.verify().ok
    half = [s for s in samples if s["t"] >= args.duration_s / 2]
    mem_mid = half[0]["redis_mib"] if half else 0.0
    mem_end = samples[-1]["redis_mib"] if samples else 0.0
    # Memory swings with each stall (a burst of decisions after it, their records alive
    # for the outcome TTL), so one sample at mid-run and one at the end can land on
    # a trough and a peak. Growth is judged on the mean of each half of the run once
    # every window is full (the graph window is the longest).
    full = [s["redis_mib"] for s in samples if s["t"] >= GRAPH_WINDOW_S]
    first, second = full[: len(full) // 2], full[len(full) // 2 :]
    mean_first = sum(first) / len(first) if first else 0.0
    mean_second = sum(second) / len(second) if second else 0.0
    result = {
        "redis_version": r.info("server")["redis_version"],
        "duration_s": args.duration_s,
        "sustainable_eps": round(sustainable),
        "sustainable_with_stalls_eps": round(sustainable * (1 - args.stall_s / args.stall_every_s)),
        "offered_eps": round(achieved),
        "offered_over_sustainable": round(
            achieved / (sustainable * (1 - args.stall_s / args.stall_every_s)), 2
        ),
        "worker_stalls": stalls,
        "inbox_cap": cap,
        "inbox_max": max((s["inbox"] for s in samples), default=0),
        "spooled": guard.counters.spooled,
        "dropped": guard.counters.dropped,
        "sent": len(sent),
        "decided": stats.get("decided", 0),
        "held": stats.get("held", 0),
        "events_lost": max(0, len(sent) - stats.get("decided", 0) - stats.get("held", 0)),
        "duplicates": max(0, stats.get("decided", 0) + stats.get("held", 0) - len(sent)),
        "redeliveries_deduplicated": stats.get("duplicates", 0),
        "statuses": {k: v for k, v in stats.items() if k in STATUSES},
        "store_rows": stored,
        "admitted": stats.get("admitted", 0),
        "store_verified": verified,
        "hostile_inputs": hostile.tried,
        "server_errors": hostile.server_errors + load.errors,
        "redis_mib_mid": round(mem_mid, 1),
        "redis_mib_end": round(mem_end, 1),
        "redis_mib_range": [round(min(full), 1), round(max(full), 1)] if full else None,
        "redis_mib_mean_first_half": round(mean_first, 1),
        "redis_mib_mean_second_half": round(mean_second, 1),
        "redis_mem_growth_pct": (
            round(100 * (mean_second - mean_first) / mean_first, 1) if mean_first else None
        ),
        "worker_rss_mib_mid": round(half[0]["worker_rss_mib"], 1) if half else None,
        "worker_rss_mib_end": round(samples[-1]["worker_rss_mib"], 1) if samples else None,
        "faults_injected": stalls,  # worker stalls; crash faults: tests/test_faults.py
    }
    result["keys_by_kind"] = keys_by_kind(r)
    result["memory_mid_by_kind"] = memory_mid
    result["memory_end_by_kind"] = memory_end
    r.close()
    server.stop()
    print(json.dumps(result))
    failed = result["events_lost"] or result["duplicates"] or result["server_errors"]
    if args.check and (failed or not verified):
        raise SystemExit(1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
