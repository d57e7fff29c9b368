"""What an event costs on a Redis Cluster, per shard, and whether namespaces spread.

Starts a local Redis Cluster (three masters on 127.0.0.1:7101-7103,
`feedbackguard.localcluster`) and a plain redis-server on 127.0.0.1:7111 beside it,
and runs the real pipeline in this process (the default checks and analysers, a
SQLite store) as a worker would: events appended to the inbox as capture does, ingest
batch after batch, an analysis each time the event clock moved the policy's interval,
then the release of every probation. Three runs, the same events:

  plain:  one namespace on the plain server;
  one:    the same namespace on the cluster (one shard serves it);
  two:    the same stream in each of two namespaces on two shards (twice the events,
          each namespace deciding exactly what `one` decided).

Per run and phase: each server's CPU (INFO cpu, user + sys, less its idle rate
measured before the run) and this process's CPU (the worker's), per event. Then
memory: Redis bytes per active account (rate-limit state of accounts that sent one
event) and per event held in the windows (after ingest: record, status entry, graph
and recent windows, consensus), and the analysis time against the window's size.
The last line is one JSON object with every figure.

    python benchmarks/cluster_cost.py [--events 40000] [--curve 2500,5000,...,40000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis

from feedbackguard import inbox_writer, keys, localcluster
from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.connection import client_from_url
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy.store import PolicyStore
from feedbackguard.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PLAIN_PORT = 7111
# Namespaces on three different masters of the default three-way slot split
# (checked at start).
NAMESPACES = ("news", "films", "books")
IDLE_S = 3.0
PUSH_CHUNK = 1000
CONSUMER = "bench"


def generate(n: int, namespace: str, seed: int = 7) -> list[FeedbackEvent]:
    """Honest-looking traffic over a day: heavy-tailed accounts, many items and IPs."""
    rng = np.random.default_rng(seed)
    accounts = max(1000, n // 5)
    account = (np.minimum(rng.zipf(1.6, n) - 1, accounts - 1) * 2654435761) % accounts
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
                namespace=namespace,
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


# --- servers ---------------------------------------------------------------------------


@contextmanager
def plain_server(home: Path) -> Iterator[str]:
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(PLAIN_PORT), "--bind", localcluster.HOST),
            *("--save", "", "--appendonly", "no", "--logfile", str(home / "redis.log")),
        ],
        cwd=home,
    )
    client = redis.Redis(host=localcluster.HOST, port=PLAIN_PORT)
    try:
        deadline = time.monotonic() + localcluster.START_TIMEOUT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://{localcluster.HOST}:{PLAIN_PORT}"
    finally:
        client.close()
        proc.terminate()
        proc.wait()


class Servers:
    """The masters behind a client (one for a plain server), their CPU and memory."""

    def __init__(self, nodes: dict[str, redis.Redis[bytes]]) -> None:
        self.nodes = nodes
        self.idle = dict.fromkeys(nodes, 0.0)

    def cpu(self) -> dict[str, float]:
        found = {}
        for name, node in self.nodes.items():
            info = node.info("cpu")
            found[name] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return found

    def memory(self) -> int:
        return sum(int(node.info("memory")["used_memory"]) for node in self.nodes.values())

    def measure_idle(self) -> None:
        """Each server's CPU rate doing nothing (cron, cluster bus), to subtract."""
        before, t0 = self.cpu(), time.perf_counter()
        time.sleep(IDLE_S)
        after, elapsed = self.cpu(), time.perf_counter() - t0
        self.idle = {n: max(0.0, (after[n] - before[n]) / elapsed) for n in self.nodes}

    def flush(self) -> None:
        for node in self.nodes.values():
            node.flushall()


@contextmanager
def metered(servers: Servers, into: dict[str, float], phase: str) -> Iterator[None]:
    """Adds to `into` the phase's worker CPU s (`<phase>.worker`) and each server's net
    CPU s (`<phase>.<server>`)."""
    cpu, worker, started = servers.cpu(), time.process_time(), time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    into[f"{phase}.worker"] = into.get(f"{phase}.worker", 0.0) + time.process_time() - worker
    for name, used in servers.cpu().items():
        net = used - cpu[name] - servers.idle[name] * elapsed
        into[f"{phase}.{name}"] = into.get(f"{phase}.{name}", 0.0) + net


# --- one run ---------------------------------------------------------------------------


def build(r: redis.Redis[bytes], home: Path) -> Pipeline:
    home.mkdir(parents=True, exist_ok=True)
    (home / "store.db").unlink(missing_ok=True)
    return Pipeline(
        r=r,
        store=Store(f"sqlite:///{home / 'store.db'}", b"k" * 32),
        policies=PolicyStore(r, cache_s=60.0),
        checks=default_checks(),
        analysers=default_analysers(),
    )


def push(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    for start in range(0, len(events), PUSH_CHUNK):
        pipe = r.pipeline(transaction=False)
        inbox_writer.append(pipe, sorted(events[start : start + PUSH_CHUNK], key=_ns))
        pipe.execute()


def copy(event: FeedbackEvent, namespace: str) -> FeedbackEvent:
    """The event in another namespace, under an id of its own (the store's are unique)."""
    return event.model_copy(update={"namespace": namespace, "event_id": event.event_id + "-b"})


def _ns(event: FeedbackEvent) -> str:
    return event.namespace


def ingest(pipeline: Pipeline, namespaces: Sequence[str]) -> None:
    """Every inbox drained batch by batch, round robin over the namespaces."""
    busy = True
    while busy:
        busy = False
        for ns in namespaces:
            if pipeline.ingest_batch(ns, CONSUMER).entries:
                busy = True


def analyse_to_end(
    pipeline: Pipeline, namespaces: Sequence[str], events: Sequence[FeedbackEvent]
) -> None:
    """Move the clocks past every probation and analyse the whole window once (so the
    release horizon reaches the end)."""
    policy = pipeline.policies.current().policy
    end = max(e.received_at.timestamp() for e in events) + policy.probation_s + 1
    pipe = pipeline.r.pipeline(transaction=False)
    for ns in namespaces:
        ledger.advance_clock(pipe, ns, end)
    pipe.execute()
    for ns in namespaces:
        pipeline.analyse(ns)


def release(pipeline: Pipeline, namespaces: Sequence[str]) -> int:
    released = 0
    for ns in namespaces:
        while done := pipeline.release(ns):
            released += done
    return released


def run(
    name: str,
    r: redis.Redis[bytes],
    servers: Servers,
    events: list[FeedbackEvent],
    namespaces: Sequence[str],
    home: Path,
) -> dict[str, float]:
    servers.flush()
    pipeline = build(r, home / name)
    pipeline.policies.current()
    for ns in namespaces:
        inbox.ensure_group(r, ns)
    servers.measure_idle()
    used: dict[str, float] = {}
    with metered(servers, used, "push"):
        push(r, events)
    with metered(servers, used, "ingest"):
        ingest(pipeline, namespaces)
    # One analysis per namespace over its whole window (scaling.md amortises it from
    # the window curve), apart from ingest and release.
    with metered(servers, used, "analysis"):
        analyse_to_end(pipeline, namespaces, events)
    with metered(servers, used, "release"):
        released = release(pipeline, namespaces)
    decided = sum(ledger.stats(r, ns).get("decided", 0) for ns in namespaces)
    if decided != len(events):
        raise SystemExit(f"{name}: decided {decided} of {len(events)}")
    pipeline.store.close()
    n = len(events)
    out: dict[str, float] = {"events": n, "released": released}
    for key, seconds in sorted(used.items()):
        out[key + "_us_per_event"] = round(seconds * 1e6 / n, 2)
    for phase in ("push", "ingest", "analysis", "release"):
        redis_us = sum(
            v for k, v in used.items() if k.startswith(phase + ".") and "worker" not in k
        )
        out[f"{phase}.redis_total_us_per_event"] = round(redis_us * 1e6 / n, 2)
    print(f"{name}: {json.dumps(out)}", file=sys.stderr)
    return out


# --- memory and the analysis curve -----------------------------------------------------


def bytes_per_account(r: redis.Redis[bytes], servers: Servers, ns: str, accounts: int) -> float:
    """Rate-limit state per active account: many accounts, one event each."""
    servers.flush()
    ctx = CheckContext(redis=r, policy=PolicyStore(r).current().policy, namespace=ns)
    before = servers.memory()
    check = RateLimitCheck()
    for start in range(0, accounts, 500):
        batch = [
            FeedbackEvent(
                namespace=ns, kind="label", account_id=f"acct{i}", item_id="item", value="x",
                ip="192.0.2.1", device_id="dev", received_at=T0 + timedelta(seconds=i),
            )
            for i in range(start, min(accounts, start + 500))
        ]  # fmt: skip
        check(batch, ctx)
    return (servers.memory() - before) / accounts


def held_bytes(
    r: redis.Redis[bytes], servers: Servers, events: Sequence[FeedbackEvent], before: int
) -> dict[str, float]:
    """Redis bytes per event held after ingest (from `before`, the memory before the
    push): all of it, and the part in records (`fg:{ns}:ev:<id>`, kept `outcome_ttl_s`
    once final) and in the graph window's buckets (kept `graph.window_s`)."""
    ns = events[0].namespace
    sample = events[:: max(1, len(events) // 500)]
    record = sum(int(r.memory_usage(keys.record(ns, e.event_id)) or 0) for e in sample)
    buckets = r.zrange(keys.graph_buckets(ns), 0, -1)  # members: the buckets' keys
    graph = sum(int(r.memory_usage(b.decode(), samples=0) or 0) for b in buckets)
    return {
        "all": (servers.memory() - before) / len(events),
        "record": record / len(sample),
        "graph_window": graph / len(events),
    }


def window_curve(
    r: redis.Redis[bytes], servers: Servers, sizes: Sequence[int], home: Path
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per window size: analysis wall and CPU seconds over a window holding that many
    events (a day of traffic: within the graph window); and the Redis bytes per event
    held after ingest of the largest (`held_bytes`)."""
    curve = []
    per_event: dict[str, float] = {}
    for size in sizes:
        servers.flush()
        pipeline = build(r, home / f"curve-{size}")
        events = generate(size, "news", seed=size)
        inbox.ensure_group(r, "news")
        before = servers.memory()
        push(r, events)
        ingest(pipeline, ("news",))
        per_event = held_bytes(r, servers, events, before)
        wall, cpu = time.perf_counter(), time.process_time()
        pipeline.analyse("news")
        point = {
            "events": size,
            "analysis_s": round(time.perf_counter() - wall, 3),
            "analysis_cpu_s": round(time.process_time() - cpu, 3),
        }
        pipeline.store.close()
        print(f"window: {json.dumps(point)}", file=sys.stderr)
        curve.append(point)
    return curve, per_event


# --- main ------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model or platform.processor()}, {os.cpu_count()} cores, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--curve", default="2500,5000,10000,20000,40000")
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    why = localcluster.available()
    if why is not None:
        raise SystemExit(f"cannot start a local Redis Cluster: {why}")
    home = Path(tempfile.mkdtemp(prefix="fg-cluster-bench-"))
    cluster = localcluster.LocalCluster(home / "cluster").start()
    results: dict[str, object] = {"machine": machine()}
    try:
        ports = [cluster.port_of(keys.inbox(ns)) for ns in NAMESPACES]
        assert len(set(ports)) == len(NAMESPACES), ports
        cr = client_from_url(cluster.url)
        shards = Servers({f"shard{p}": cluster.node(p) for p in cluster.ports})
        with plain_server(home / "plain") as plain_url:
            pr = client_from_url(plain_url)
            plain = Servers({"plain": pr})
            events = generate(args.events, NAMESPACES[0])
            two = sorted(
                [*events, *(copy(e, NAMESPACES[1]) for e in events)], key=lambda e: e.received_at
            )
            results["plain"] = run("plain", pr, plain, events, NAMESPACES[:1], home)
            results["one"] = run("one", cr, shards, events, NAMESPACES[:1], home)
            results["two"] = run("two", cr, shards, two, NAMESPACES[:2], home)
            results["redis_bytes_per_account"] = round(
                bytes_per_account(cr, shards, NAMESPACES[0], args.accounts)
            )
            sizes = [int(s) for s in args.curve.split(",") if s]
            curve, per_event = window_curve(cr, shards, sizes, home)
            results["analysis_curve"] = curve
            for part, value in per_event.items():
                results[f"redis_bytes_per_event_{part}"] = round(value)
            pr.close()
        cr.close()
    finally:
        cluster.stop()

    def total(run_name: str, phase: str) -> float:
        found = results[run_name]
        assert isinstance(found, dict)
        return float(found[f"{phase}.redis_total_us_per_event"])

    for name in ("plain", "one", "two"):
        found = results[name]
        assert isinstance(found, dict)
        results[f"{name}_redis_us_per_event"] = round(
            sum(total(name, p) for p in ("push", "ingest", "release")), 2
        )
        results[f"{name}_worker_us_per_event"] = round(
            sum(found[f"{p}.worker_us_per_event"] for p in ("push", "ingest", "release")), 2
        )
    one, two = results["one"], results["two"]
    assert isinstance(one, dict)
    assert isinstance(two, dict)
    results["two_decides_as_one"] = two["released"] == 2 * one["released"]
    results["two_over_one_redis"] = round(
        float(results["two_redis_us_per_event"]) / float(results["one_redis_us_per_event"]), 3
    )
    results["two_over_one_worker"] = round(
        float(results["two_worker_us_per_event"]) / float(results["one_worker_us_per_event"]), 3
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
