"""What capture costs a product endpoint, measured with gunicorn and wrk.

The same minimal Flask JSON endpoint (POST /items/<id>/feedback) is served by
gunicorn (2 sync workers) and loaded by `wrk --latency` for `--duration` seconds,
in one run, side by side:

  bare            the endpoint alone
  guard           with FeedbackGuard capture (sync: one round trip before the view)
  guard_buffered  with FeedbackGuard capture_mode = "buffered" (opt-in)
  naive_rq        one `rq` `Queue.enqueue` per request (what docs/architecture.md rules out)

Requests/s, p50 and p99 of each, ratios to bare, and the events actually found in
the inbox afterwards (so a fast but lossy capture would show). Modes run in rotation
`--rounds` times; ratios are taken within each round (same background load) and
their median is reported, with each mode's median round.

CPU, the firmer figure on a shared machine: the gunicorn workers' CPU time (user +
sys from the OS, psutil) over each measured wrk run, per request; what capture costs
the product process per request is a mode's figure less the bare endpoint's in the
same round (`capture_cpu_us_per_request` for the default sync mode,
`..._buffered`, and `naive_rq_cpu_us_per_request` for one RQ enqueue), medians over
rounds (each mode's whole figure: `<mode>_workers_cpu_us_per_request`). Events a
capture mode spooled to disk (Redis too slow to answer) are counted apart from those
in the inbox. Redis is a private embedded server started here (its CPU per request is
reported too), or --redis-url (flushed: give it a database of its own; its CPU then
counts every client). The last line is one JSON object with every figure.

    python benchmarks/capture_overhead.py [--duration 10] [--rounds 3] [--redis-url URL]

Needs `wrk` on PATH (`apt-get install -y wrk`) and gunicorn (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import flask
import psutil
import redis

from feedbackguard.embedded import EmbeddedRedis

MODES = ("bare", "guard", "guard_buffered", "naive_rq")
WORKERS = 2
WRK_THREADS = 2
WRK_CONNECTIONS = 8
WARMUP_S = 2
FLUSH_WAIT_S = 0.5
"""Longer than the buffered mode's flush interval (buffer_flush_ms, 5 ms by default) and its
Redis timeout (redis_timeout_ms, 50 ms)."""
READY_TIMEOUT_S = 20.0
NAMESPACE = "default"
BODY = '{"label": "billing", "model": {"label": "bug", "confidence": 0.81}}'
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-User"] = "user-123"
wrk.headers["User-Agent"] = "wrk-benchmark"
"""
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


# -- the app gunicorn serves (imported by the gunicorn workers) -----------------------


def handle_feedback(body: dict[str, Any]) -> None:
    """The job the naive design enqueues (never run here: only enqueue is measured)."""


def app_from_env() -> flask.Flask:
    """The benchmark endpoint in the mode named by BENCH_MODE."""
    mode = os.environ["BENCH_MODE"]
    app = flask.Flask("capture_overhead")

    def view(item_id: str) -> dict[str, Any]:
        body = flask.request.get_json()
        return {"ok": True, "item": item_id, "label": body["label"]}

    if mode in ("guard", "guard_buffered"):
        from feedbackguard import FeedbackGuard

        guard = FeedbackGuard(app)
        view = guard.feedback(
            kind="label",
            account="header:X-User",
            item="view:item_id",
            value="json:label",
            model_output="json:model",
        )(view)
    elif mode == "naive_rq":
        from rq import Queue

        queue = Queue("feedback", connection=redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]))
        plain = view

        def view(item_id: str) -> dict[str, Any]:
            queue.enqueue(handle_feedback, flask.request.get_json())
            return plain(item_id)

    app.add_url_rule("/items/<item_id>/feedback", "feedback", view, methods=["POST"])
    return app


# -- the driver ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not listen on {port}")


def start_server(mode: str, redis_url: str, home: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_REDIS_URL": redis_url,
        "FEEDBACKGUARD_REDIS_URL": redis_url,
        "FEEDBACKGUARD_HOME": str(home),
        "FEEDBACKGUARD_CAPTURE_MODE": "buffered" if mode == "guard_buffered" else "sync",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    args = [gunicorn, "-w", str(WORKERS), "-k", "sync", "-b", f"127.0.0.1:{port}"]
    args += ["--chdir", str(Path(__file__).parent), "--log-level", "warning"]
    args += ["capture_overhead:app_from_env()"]
    proc = subprocess.Popen(args, env=env)
    _wait_ready(port)
    return proc, port


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # graceful: workers finish, atexit flushes the buffered mode
    proc.wait(timeout=30)


def workers_cpu_s(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + sys) of gunicorn's workers so far (the master only forks
    and watches them)."""
    total = 0.0
    for worker in psutil.Process(server.pid).children(recursive=True):
        try:
            times = worker.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def redis_cpu_s(r: redis.Redis[bytes]) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_wrk(port: int, duration: int, script: Path) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/items/i-1/feedback"
    args = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration}s", "--latency"]
    out = subprocess.run([*args, "-s", str(script), url], capture_output=True, text=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms), total requests and non-2xx count from wrk's text."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if not rps or not total:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    result = {"rps": float(rps.group(1)), "requests": float(total.group(1))}
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not m:
            raise RuntimeError(f"no p{pct} in wrk output:\n{out}")
        result[f"p{pct}_ms"] = float(m.group(1)) * _UNITS_MS[m.group(2)]
    return result


def measure(
    mode: str, r: redis.Redis[bytes], url: str, duration: int, script: Path
) -> dict[str, float]:
    r.flushdb()
    with tempfile.TemporaryDirectory() as home:
        proc, port = start_server(mode, url, Path(home))
        try:
            run_wrk(port, WARMUP_S, script)
            if mode == "guard_buffered":
                time.sleep(FLUSH_WAIT_S)  # the warm-up's events leave the buffer first
            r.flushdb()  # count only what the measured run captured
            workers, server = workers_cpu_s(proc), redis_cpu_s(r)
            result = run_wrk(port, duration, script)
            if mode == "guard_buffered":
                time.sleep(FLUSH_WAIT_S)  # what waits in the buffer is the run's work
            result["cpu_us_per_request"] = (
                (workers_cpu_s(proc) - workers) * 1e6 / result["requests"]
            )
            result["redis_cpu_us_per_request"] = (
                (redis_cpu_s(r) - server) * 1e6 / result["requests"]
            )
        finally:
            stop_server(proc)
        spool_files = list(Path(home).rglob("spool.jsonl*"))
        spooled = sum(p.stat().st_size for p in spool_files)
        spooled_events = sum(p.read_bytes().count(b"\n") for p in spool_files)
    result["events_in_stream"] = float(r.xlen(f"fg:{{{NAMESPACE}}}:inbox"))
    result["rq_jobs_queued"] = float(r.llen("rq:queue:feedback"))
    result["spool_bytes"] = float(spooled)
    result["spooled_events"] = float(spooled_events)
    result["load_1m"] = os.getloadavg()[0]
    return result


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    ordered = sorted(rounds, key=lambda x: x["rps"])
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (>= 10)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--redis-url", help="default: a private embedded Redis")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    modes = [m for m in args.modes.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        embedded = None if args.redis_url else EmbeddedRedis(Path(tmp) / "redis-home")
        url = args.redis_url or embedded.start()  # type: ignore[union-attr]
        r = redis.Redis.from_url(url)
        r.ping()
        load_before = os.getloadavg()[0]
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        try:
            for i in range(args.rounds):
                for mode in modes:
                    res = measure(mode, r, url, args.duration, script)
                    runs[mode].append(res)
                    print(f"round {i + 1} {mode:15s} {_fmt(res)}", flush=True)
            r.flushdb()
        finally:
            if embedded is not None:
                embedded.stop()
    report(modes, runs, args, load_before)


def _fmt(res: dict[str, float]) -> str:
    return (
        f"{res['rps']:8.0f} req/s  p50 {res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  "
        f"CPU {res['cpu_us_per_request']:6.1f} us/req "
        f"(Redis {res['redis_cpu_us_per_request']:5.1f})  "
        f"events {res['events_in_stream']:.0f}/{res['requests']:.0f} "
        f"(+{res['spooled_events']:.0f} spooled)  "
        f"load {res['load_1m']:.2f}"
    )


def _median_added_cpu(runs: dict[str, list[dict[str, float]]], mode: str) -> float:
    """The mode's workers' CPU per request less the bare endpoint's, in each round."""
    return statistics.median(
        m["cpu_us_per_request"] - b["cpu_us_per_request"]
        for m, b in zip(runs[mode], runs["bare"], strict=True)
    )


def _median_ratio(runs: dict[str, list[dict[str, float]]], mode: str) -> float:
    """Ratios are taken within a round (bare and mode ran back to back, under the
    same background load), then the median over rounds."""
    return statistics.median(
        m["rps"] / b["rps"] for m, b in zip(runs[mode], runs["bare"], strict=True)
    )


def _median_added_p99(runs: dict[str, list[dict[str, float]]], mode: str) -> float:
    return statistics.median(
        m["p99_ms"] - b["p99_ms"] for m, b in zip(runs[mode], runs["bare"], strict=True)
    )


def report(
    modes: list[str],
    runs: dict[str, list[dict[str, float]]],
    args: argparse.Namespace,
    load: float,
) -> None:
    best = {m: median_round(v) for m, v in runs.items()}
    bare = best.get("bare")
    print()
    print(f"{'mode':15s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'vs bare':>8s}")
    for mode in modes:
        res = best[mode]
        ratio = _median_ratio(runs, mode) if bare else float("nan")
        print(
            f"{mode:15s} {res['rps']:8.0f} {res['p50_ms']:7.2f} {res['p99_ms']:7.2f} {ratio:8.2f}"
        )
    summary: dict[str, Any] = {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "workers": WORKERS,
        "wrk_connections": WRK_CONNECTIONS,
        "cpus": os.cpu_count(),
        "load_1m_before": round(load, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }
    for mode in modes:
        res = best[mode]
        prefix = mode
        summary[f"{prefix}_rps"] = round(res["rps"], 1)
        summary[f"{prefix}_p50_ms"] = round(res["p50_ms"], 3)
        summary[f"{prefix}_p99_ms"] = round(res["p99_ms"], 3)
        summary[f"{prefix}_events_in_stream"] = int(res["events_in_stream"])
        summary[f"{prefix}_spooled_events"] = int(res["spooled_events"])
        summary[f"{prefix}_requests"] = int(res["requests"])
        cpu = statistics.median(run["cpu_us_per_request"] for run in runs[mode])
        # The gunicorn workers' whole CPU per request (`naive_rq_cpu_us_per_request`,
        # below, is the enqueue's added CPU: the same name would overwrite it).
        summary[f"{prefix}_workers_cpu_us_per_request"] = round(cpu, 1)
        redis_cpu = statistics.median(run["redis_cpu_us_per_request"] for run in runs[mode])
        summary[f"{prefix}_redis_cpu_us_per_request"] = round(redis_cpu, 1)
    if bare:
        for mode in modes:
            if mode != "bare":
                summary["ratio_" + mode] = round(_median_ratio(runs, mode), 3)
                summary[f"p99_added_ms_{mode}"] = round(_median_added_p99(runs, mode), 3)
        if "guard" in best:
            summary["p99_added_ms"] = summary["p99_added_ms_guard"]
        added = {"guard": "capture_cpu_us_per_request"}
        added["guard_buffered"] = "capture_cpu_us_per_request_buffered"
        added["naive_rq"] = "naive_rq_cpu_us_per_request"
        for mode, key in added.items():
            if mode in best:
                summary[key] = round(_median_added_cpu(runs, mode), 1)
    summary["naive_rq_rps"] = summary.get("naive_rq_rps")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
