"""CPU per event of the pipeline against the naive design, in one run.

CPU time, not wall time: the development machine is 2 cores shared by several
processes, where events/s moves 3x from one run to the next but the CPU an event costs
does not. Runs on a private Redis (embedded unless --redis-url) and a SQLite store in
a temporary FEEDBACKGUARD_HOME, one day of heavy-tailed traffic:

  ingest   `feedbackguard worker` processes serving only the ingest queue (analysis and
           release off): from the moment the inbox holds every event until it is
           empty, the workers' CPU (user + sys from the OS, every worker process and
           its children: psutil) and the Redis server's (INFO cpu, the whole process).
           The events are appended while the benchmark holds the pump lock, so no
           worker starts before the clock does; the append's own Redis CPU (capture's
           side) is reported apart.
  full     the same with every queue served: ingest, the analysis every
           `analysis.interval_s` of event time and the release into the store, until
           every event has a final status; CPU per event amortised over the run.
  naive    one RQ job per event (SimpleWorker): the job does what the pipeline does
           for one event (rate limits, decision, record, store). CPU of the worker
           process (os.wait4) and of Redis from the first job to the last, marginal
           per event: a run of one event is subtracted (start-up and imports).

Also Redis memory per active account (rate-limit state) and, with
--replay-events N, `feedbackguard replay` of N events end to end (wall time).
`--profile` adds where the time goes: Redis's time per command and per Lua script
during the ingest phase (SLOWLOG of every call), and a py-spy profile of the ingest
workers (`--profile-dir`). The last line is one JSON object with every figure.

    python benchmarks/pipeline_throughput.py [--events 100000] [--naive-events 1000]
        [--workers 1] [--replay-events 0] [--profile] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

import feedbackguard
from feedbackguard import keys, scripts
from feedbackguard.checks.base import Check, CheckContext, Findings
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.inbox_writer import UNCAPPED
from feedbackguard.pipeline import engine, inbox, ledger, runtime
from feedbackguard.pipeline.decide import decide
from feedbackguard.pipeline.replay import push, replay, start_workers, stop_workers
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NS = "bench"
POLL_S = 0.1
IDLE_CHECK_S = 0.5
IDLE_CPU_S = 0.05
"""A worker using less CPU than this per IDLE_CHECK_S is idle (its imports done)."""
HOLD_PUMP_MS = 600_000
SLOWLOG_LEN = 200_000
PROFILE_RATE = 100
SLOWLOG_DEFAULT_US = 10_000


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


# --- measuring CPU ----------------------------------------------------------------------


def redis_cpu_s(r: redis.Redis[bytes]) -> float:
    """CPU seconds the Redis server process has used so far (INFO cpu: every thread)."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def processes_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + sys) of the processes, their children reaped so far and
    their live descendants."""
    total = 0.0
    for pid in pids:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    return total


@dataclass
class Cost:
    """What one phase cost: CPU seconds of the workers and of Redis, wall seconds."""

    events: int
    wall_s: float
    worker_cpu_s: float
    redis_cpu_s: float

    def us(self, cpu_s: float) -> float:
        return cpu_s * 1e6 / self.events

    @property
    def worker_us(self) -> float:
        return self.us(self.worker_cpu_s)

    @property
    def redis_us(self) -> float:
        return self.us(self.redis_cpu_s)

    @property
    def total_us(self) -> float:
        return self.us(self.worker_cpu_s + self.redis_cpu_s)


# --- feedbackguard ----------------------------------------------------------------------


def wait_drained(r: redis.Redis[bytes], tick: Callable[[], None] = lambda: None) -> None:
    while inbox.backlog(r, NS):
        tick()
        time.sleep(POLL_S)


def wait_final(
    r: redis.Redis[bytes], last_due: float, tick: Callable[[], None] = lambda: None
) -> None:
    """Until every event left the inbox, then (clock moved) left probation."""
    wait_drained(r, tick)
    pipe = r.pipeline()
    ledger.advance_clock(pipe, NS, last_due)
    pipe.execute()
    while r.zcount(keys.pending(NS), "-inf", last_due) or r.zcard(keys.releasing(NS)):
        tick()
        time.sleep(POLL_S)


def wait_idle(r: redis.Redis[bytes], pids: Sequence[int]) -> None:
    """Until every worker has registered with RQ and stopped using CPU (imports done)."""
    while Worker.count(connection=r) < len(pids):
        time.sleep(POLL_S)
    last = processes_cpu_s(pids)
    while True:
        time.sleep(IDLE_CHECK_S)
        now = processes_cpu_s(pids)
        if now - last < IDLE_CPU_S * len(pids):
            return
        last = now


def run_pipeline(
    settings: Settings,
    url: str,
    events: list[FeedbackEvent],
    workers: int,
    *,
    analysis: bool,
    profile: Path | None = None,
    code: Path | None = None,
) -> tuple[Cost, float]:
    """One phase (see the module docstring): its cost from the first batch to the end,
    and the Redis CPU seconds the append of the events into the inbox took. With
    `code`, the workers run the feedbackguard found there (a checkout of another
    version), for a before/after in one run."""
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    Path(settings.home, "store.db").unlink(missing_ok=True)
    probation = PolicyStore(r).current().policy.probation_s
    inbox.ensure_group(r, NS)
    queues = () if analysis else (keys.INGEST_QUEUE,)
    with _python_path(code):
        procs = start_workers(workers, settings, url, queues)
    pids = [p.pid for p in procs]
    spies: list[subprocess.Popen[bytes]] = []
    try:
        wait_idle(r, pids)
        # Holding the pump lock keeps every worker's pump from queueing jobs: the inbox
        # fills while nobody reads it, and the clock starts with the first batch.
        r.set(keys.pump_lock(), 1, px=HOLD_PUMP_MS)
        cpu = redis_cpu_s(r)
        push(r, events, UNCAPPED)
        append_cpu = redis_cpu_s(r) - cpu
        slowlog = SlowLog(r) if profile else None
        if profile:
            spies = [_py_spy(pid, profile) for pid in pids]
        worker_cpu = processes_cpu_s(pids)
        cpu = redis_cpu_s(r)
        started = time.perf_counter()
        r.delete(keys.pump_lock())
        tick = slowlog.poll if slowlog else lambda: None
        if analysis:
            wait_final(r, events[-1].received_at.timestamp() + probation, tick)
        else:
            wait_drained(r, tick)
        cost = Cost(
            events=len(events),
            wall_s=time.perf_counter() - started,
            worker_cpu_s=processes_cpu_s(pids) - worker_cpu,
            redis_cpu_s=redis_cpu_s(r) - cpu,
        )
        if slowlog:
            slowlog.stop()
            slowlog.print(cost)
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        stop_workers(procs)
    decided = ledger.stats(r, NS).get("decided", 0)
    if decided != len(events):
        raise SystemExit(f"lost events: decided {decided} of {len(events)}")
    r.close()
    return cost, append_cpu


@contextlib.contextmanager
def _python_path(code: Path | None) -> Iterator[None]:
    """Processes started in the block run the feedbackguard in `code` (default: the one
    this process imported): first on PYTHONPATH, and the working directory, which
    `python -m` puts before PYTHONPATH."""
    top = code or Path(feedbackguard.__file__).resolve().parents[1]
    saved, cwd = os.environ.get("PYTHONPATH"), Path.cwd()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(top), saved)))
    os.chdir(top)
    try:
        yield
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling a worker until interrupted, without pausing it (raw folded
    stacks: `worker-<pid>.txt`)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out.mkdir(parents=True, exist_ok=True)
    args = [exe, "record", "--pid", str(pid), "--nonblocking", "--format", "raw"]
    args += ["--rate", str(PROFILE_RATE), "-o", str(out / f"worker-{pid}.txt")]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class SlowLog:
    """Redis's own time per top-level command, per Lua script and per command run
    inside scripts, from SLOWLOG with every call logged (read and reset at each poll,
    so that it never overflows). Durations are the server's wall time per call, so
    on a busy machine they include preemption: shares, not CPU figures."""

    def __init__(self, r: redis.Redis[bytes]) -> None:
        self.r = r
        self.names = {scripts.sha(p.stem): p.stem for p in scripts_dir().glob("*.lua")}
        self.top: dict[str, list[int]] = {}
        self.inner: dict[str, list[int]] = {}
        r.config_set("slowlog-max-len", SLOWLOG_LEN)
        r.config_set("slowlog-log-slower-than", 0)
        r.slowlog_reset()

    def poll(self) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.slowlog_get(SLOWLOG_LEN)
        pipe.slowlog_reset()
        entries, _ = pipe.execute()
        for entry in entries:
            args = entry["command"].split()
            name = args[0].decode().lower()
            where = self.top
            if entry.get("client_address") in (b"?:0", "?:0"):
                where = self.inner
            elif name == "evalsha" and len(args) > 1:
                name = "script " + self.names.get(args[1].decode(), args[1].decode()[:8])
            got = where.setdefault(name, [0, 0])
            got[0] += 1
            got[1] += int(entry["duration"])

    def stop(self) -> None:
        self.poll()
        self.r.config_set("slowlog-log-slower-than", SLOWLOG_DEFAULT_US)

    def print(self, cost: Cost) -> None:
        total = sum(usec for _, usec in self.top.values()) or 1
        for title, table in (("top-level calls", self.top), ("inside scripts", self.inner)):
            print(f"Redis time by command, {title} (SLOWLOG, share of top-level):", file=sys.stderr)
            for name, (calls, usec) in sorted(table.items(), key=lambda x: -x[1][1])[:15]:
                print(
                    f"  {name:28s} {calls:8d} calls {calls / cost.events:6.2f}/event "
                    f"{usec / total:6.1%}",
                    file=sys.stderr,
                )


def scripts_dir() -> Path:
    return Path(str(files("feedbackguard") / "lua"))


# --- where the CPU goes, step by step (in-process) --------------------------------------


class Steps:
    """CPU per ingest step: the calling thread's (time.thread_time) and the Redis
    server's (INFO cpu before and after the step: nothing else uses this Redis)."""

    def __init__(self, r: redis.Redis[bytes]) -> None:
        self.r = r
        self.worker: dict[str, float] = {}
        self.redis: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str, server: bool = True) -> Iterator[None]:
        """Time the block; `server=False` for a step that sends nothing to Redis (called
        per event: an INFO per call would cost more than the step)."""
        before = redis_cpu_s(self.r) if server else 0.0
        started = time.thread_time()
        try:
            yield
        finally:
            took = time.thread_time() - started
            if server:
                self.redis[name] = self.redis.get(name, 0.0) + redis_cpu_s(self.r) - before
            self.worker[name] = self.worker.get(name, 0.0) + took

    def timed(self, name: str, fn: Callable[..., Any], server: bool) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.step(name, server):
                return fn(*args, **kwargs)

        return call


class _TimedCheck:
    def __init__(self, check: Check, steps: Steps) -> None:
        self.check = check
        self.steps = steps
        self.name = check.name

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        with self.steps.step("check " + self.check.name):
            return self.check(events, ctx)


def run_steps(settings: Settings, url: str, events: list[FeedbackEvent]) -> Steps:
    """The ingest of `events` in this process, one batch after another, with the CPU
    of each step measured (analysis and release off)."""
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    PolicyStore(r).current()
    inbox.ensure_group(r, NS)
    push(r, events, UNCAPPED)
    steps = Steps(r)
    pipeline = runtime.Runtime.build(settings).pipeline
    pipeline.checks = [_TimedCheck(check, steps) for check in pipeline.checks]
    patches: list[tuple[Any, str, str, bool]] = [
        (inbox, "read_batch", "inbox read", True),
        (engine.Pipeline, "_parse", "parse and dedupe", True),
    ]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _, _ in patches]
    for owner, attr, name, server in patches:
        setattr(owner, attr, steps.timed(name, getattr(owner, attr), server))
    try:
        with steps.step("total"):
            while pipeline.ingest_batch(NS, "steps").entries:
                pass
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
        pipeline.store.close()
    r.close()
    return steps


def print_steps(steps: Steps, events: int) -> dict[str, float]:
    """Each step's CPU per event (the rest of the batch: decisions, record writes, the
    MULTI, the ack), to stderr; returns the worker's and Redis's per step."""
    names = [n for n in steps.worker if n != "total"]
    rest_worker = steps.worker["total"] - sum(steps.worker[n] for n in names)
    rest_redis = steps.redis["total"] - sum(steps.redis.get(n, 0.0) for n in names)
    rows = [(n, steps.worker[n], steps.redis.get(n, 0.0)) for n in names]
    rows.append(("decisions, records, ack", rest_worker, rest_redis))
    rows.append(("total", steps.worker["total"], steps.redis["total"]))
    print(f"{'step':28s} {'worker us/event':>16s} {'Redis us/event':>15s}", file=sys.stderr)
    out: dict[str, float] = {}
    for name, worker, red in rows:
        w, rd = worker * 1e6 / events, red * 1e6 / events
        print(f"{name:28s} {w:16.1f} {rd:15.1f}", file=sys.stderr)
        key = name.replace(" ", "_").replace(",", "")
        out[f"step_worker_us_{key}"] = round(w, 1)
        out[f"step_redis_us_{key}"] = round(rd, 1)
    return out


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
        event, findings.get(0, []), current.policy, current.version, datetime.now(UTC)
    )
    r.set(keys.record(event.namespace, event.event_id), raw)
    if decision.status == "pending":
        store = Store.from_settings(settings)
        admitted = decision.model_copy(update={"status": "admitted"})
        store.admit([(event, [decision, admitted])])
        store.close()
    r.close()
    return decision.status


def run_naive(settings: Settings, url: str, events: list[FeedbackEvent]) -> Cost:
    """The naive design's cost: `len(events)` jobs, less a run of one (start-up)."""
    one = _naive_run(settings, url, events[:1])
    many = _naive_run(settings, url, events)
    return Cost(
        events=len(events) - 1,
        wall_s=many.wall_s - one.wall_s,
        worker_cpu_s=many.worker_cpu_s - one.worker_cpu_s,
        redis_cpu_s=many.redis_cpu_s - one.redis_cpu_s,
    )


def _naive_run(settings: Settings, url: str, events: list[FeedbackEvent]) -> Cost:
    """A burst RQ worker over one job per event: its process's CPU (os.wait4) and
    Redis's from its start to its exit (the enqueues, capture's side, not counted)."""
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    Path(settings.home, "store.db").unlink(missing_ok=True)
    Store.from_settings(settings, create=True).close()  # `feedbackguard store init`
    queue = Queue("naive", connection=r)
    for event in events:
        queue.enqueue("pipeline_throughput.naive_job", event.to_json(), result_ttl=0)
    here = str(Path(__file__).resolve().parent)
    env = dict(
        os.environ,
        FEEDBACKGUARD_REDIS_URL=url,
        FEEDBACKGUARD_HOME=str(settings.home),
        PYTHONPATH=os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH")))),
    )
    cpu = redis_cpu_s(r)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", "rq.worker.SimpleWorker",
         "--url", url, "-q", "naive", "--logging_level", "WARNING"],
        env=env,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"naive worker failed: {proc.returncode}")
    cost = Cost(
        events=len(events),
        wall_s=time.perf_counter() - started,
        worker_cpu_s=usage.ru_utime + usage.ru_stime,
        redis_cpu_s=redis_cpu_s(r) - cpu,
    )
    if r.llen("rq:queue:naive"):
        raise SystemExit("naive worker left jobs undone")
    failed = FailedJobRegistry("naive", connection=r).count
    if failed:
        # A failing job is cheap: its CPU would make the naive design look cheaper.
        raise SystemExit(f"naive worker: {failed} of {len(events)} jobs failed")
    r.close()
    return cost


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


def median_cost(costs: Sequence[Cost]) -> Cost:
    """Each figure's median over runs (runs of the same events)."""
    return Cost(
        events=costs[0].events,
        wall_s=statistics.median(c.wall_s for c in costs),
        worker_cpu_s=statistics.median(c.worker_cpu_s for c in costs),
        redis_cpu_s=statistics.median(c.redis_cpu_s for c in costs),
    )


def report(results: dict[str, Any], name: str, cost: Cost) -> None:
    results[f"worker_cpu_us_per_event_{name}"] = round(cost.worker_us, 1)
    results[f"redis_cpu_us_per_event_{name}"] = round(cost.redis_us, 1)
    results[f"total_cpu_us_per_event_{name}"] = round(cost.total_us, 1)
    print(
        f"{name}: CPU per event: workers {cost.worker_us:,.1f} us, Redis {cost.redis_us:,.1f} us,"
        f" total {cost.total_us:,.1f} us ({cost.events:,} events, {cost.wall_s:,.1f} s wall)",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=1_000)
    parser.add_argument("--workers", default="1", help="worker counts of the full phase: 1,2")
    parser.add_argument("--phases", default="ingest,full,naive,memory")
    parser.add_argument("--replay-events", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="runs of the ingest phase")
    parser.add_argument(
        "--baseline-code",
        type=Path,
        help="a checkout whose feedbackguard the workers also run, in alternation",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-dir", type=Path, default=Path("pipeline-profile"))
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    counts = [int(n) for n in args.workers.split(",")]
    home = Path(tempfile.mkdtemp(prefix="fg-bench-"))
    url = args.redis_url or EmbeddedRedis(home).start()
    try:
        settings = Settings(home=home, redis_url=url, clock="events")
        events = generate(args.events, accounts=max(1000, args.events // 5))
        results: dict[str, Any] = {"events": len(events)}
        ours: Cost | None = None
        if "ingest" in phases:
            profile = args.profile_dir if args.profile else None
            runs: dict[str, list[Cost]] = {"ingest": [], "baseline_ingest": []}
            appends: list[float] = []
            for _ in range(args.rounds):
                for name, code in (("baseline_ingest", args.baseline_code), ("ingest", None)):
                    if name == "baseline_ingest" and code is None:
                        continue
                    cost, append = run_pipeline(
                        settings, url, events, counts[0], analysis=False, profile=profile,
                        code=code,
                    )  # fmt: skip
                    print(
                        f"{name}: workers {cost.worker_us:.1f} us/event, "
                        f"Redis {cost.redis_us:.1f} us/event",
                        file=sys.stderr,
                    )
                    runs[name].append(cost)
                    appends.append(append)
            for name, costs in runs.items():
                if costs:
                    report(results, name, median_cost(costs))
            if runs["baseline_ingest"]:
                # Paired: each round ran both back to back, under the same load.
                pairs = list(zip(runs["ingest"], runs["baseline_ingest"], strict=True))
                for what in ("worker", "redis", "total"):
                    ratio = statistics.median(
                        getattr(a, f"{what}_us") / getattr(b, f"{what}_us") for a, b in pairs
                    )
                    results[f"{what}_cpu_ratio_ingest_to_baseline"] = round(ratio, 3)
            ours = median_cost(runs["ingest"])
            results["events_per_s_ingest"] = round(ours.events / ours.wall_s)
            append = statistics.median(appends)
            results["redis_cpu_us_per_event_append"] = round(append * 1e6 / len(events), 1)
        if "steps" in phases:
            steps = run_steps(settings, url, events)
            results.update(print_steps(steps, len(events)))
        full: Cost | None = None
        if "full" in phases:
            for workers in counts:
                cost, _ = run_pipeline(settings, url, events, workers, analysis=True)
                report(results, "full" if full is None else f"full_{workers}w", cost)
                full = full or cost
                results[f"events_per_s_{workers}w"] = round(cost.events / cost.wall_s)
                results[f"redis_cpu_us_per_event_{workers}w"] = round(cost.redis_us, 1)
        if "naive" in phases:
            naive = run_naive(settings, url, events[: args.naive_events])
            results["naive_worker_cpu_us_per_event"] = round(naive.worker_us, 1)
            results["naive_redis_cpu_us_per_event"] = round(naive.redis_us, 1)
            results["naive_total_cpu_us_per_event"] = round(naive.total_us, 1)
            results["naive_rq_events_per_s"] = round(naive.events / naive.wall_s, 1)
            print(
                f"naive, one RQ job per event: CPU per event: worker {naive.worker_us:,.0f} us, "
                f"Redis {naive.redis_us:,.1f} us, total {naive.total_us:,.0f} us",
                file=sys.stderr,
            )
            if ours is not None:
                results["naive_over_ingest"] = round(naive.total_us / ours.total_us, 1)
            if full is not None:
                results["naive_over_full"] = round(naive.total_us / full.total_us, 1)
        if "memory" in phases:
            per_account = bytes_per_account(settings, url, 10_000)
            results["redis_bytes_per_account"] = round(per_account)
            print(f"Redis memory per active account: {per_account:,.0f} B", file=sys.stderr)
        if args.replay_events:
            replay_file = home / "replay.jsonl"
            with replay_file.open("wb") as fh:
                for event in generate(
                    args.replay_events, accounts=args.replay_events // 5, seed=11
                ):
                    fh.write(event.to_json() + b"\n")
            r: redis.Redis[bytes] = redis.Redis.from_url(url)
            r.flushdb()
            r.close()
            Path(home, "store.db").unlink(missing_ok=True)
            started = time.perf_counter()
            done = replay(replay_file, settings, workers=2)
            results["replay_s"] = round(time.perf_counter() - started, 1)
            results["replay_events"] = done.events
            print(f"replay of {done.events:,} events: {results['replay_s']} s", file=sys.stderr)
    finally:
        if not args.redis_url:
            EmbeddedRedis(home).stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
