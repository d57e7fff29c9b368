"""Replaying a month of feedback: the time analysis adds to ingest, in one run.

In one run, on a private embedded Redis in a temporary FEEDBACKGUARD_HOME (its store
and signing key made first, as `store init` does):
  1. a simulated stream (`feedbackguard.simulate`: honest traffic over `--days` days,
     about `--events` events, plus the `--scenario` attack) is written to a file;
  2. `feedbackguard replay` (one worker process) decides it with every default
     analyser (the `analysis` setting `--mode`, incremental by default): `replay_s`;
  3. the same replay with analysis switched off (`analysis = "off"`): `ingest_only_s`;
  4. unless `--no-check`, the stream is replayed twice more in process, on event time
     and deterministically (`pipeline.stepped`: the same batches, analysis runs and
     releases at the same event times), once with incremental analysis and once with
     a full recompute at every run, and the final status of every event is compared:
     `identical_to_full`. (Worker replays cannot be compared event by event: when
     analysis runs depends on how far ingest got, i.e. on scheduling.)

Where analysis time goes: the seconds each analyser spent over the replay
(`Pipeline.analyse` records them), and the number of analysis runs.
The last line is one JSON object with every figure.

    python benchmarks/replay_month.py [--days 30] [--events 50000] [--scenario swarm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from feedbackguard import keys
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.pipeline import stepped
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.replay import read_events, replay
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import AnalysisMode, Settings
from feedbackguard.simulate import SCENARIOS, HonestParams, generate, write
from feedbackguard.store import Store

NAMESPACE = "default"
# Honest accounts per event: the default population's ratio (1,200 for 8,000 events).
ACCOUNTS_PER_EVENT = 0.15
ANALYSERS = ("graph", "consistency")


def analysis_seconds(r: redis.Redis[bytes]) -> dict[str, Any]:
    """Per analyser, the seconds it spent over the replay, and the runs."""
    out: dict[str, Any] = {}
    for name in ("analysis", *(f"analysis:{a}" for a in ANALYSERS)):
        raw = r.hgetall(keys.timing(NAMESPACE, name))
        out[name] = round(float(raw.get(b"sum", 0.0)), 2)
        if name == "analysis":
            out["analysis_runs"] = int(raw.get(b"count", 0))
    return out


def worker_replay(path: Path, home: Path, mode: AnalysisMode) -> tuple[float, dict[str, Any]]:
    """`feedbackguard replay` of `path` on a fresh embedded Redis: seconds, statuses and
    analysis timings."""
    embedded = EmbeddedRedis(home)
    url = embedded.start()
    try:
        settings = Settings(home=home, redis_url=url, clock="events", analysis=mode)
        with Store.from_settings(settings, create=True):
            pass
        started = time.perf_counter()
        report = replay(path, settings, workers=1)
        took = time.perf_counter() - started
        r: redis.Redis[bytes] = redis.Redis.from_url(url)
        found = {"statuses": report.statuses, **analysis_seconds(r)}
        r.close()
    finally:
        embedded.stop()
    print(f"replay ({mode}): {report.events:,} events in {took:.1f} s {found}", file=sys.stderr)
    return took, found


def inprocess_statuses(path: Path, home: Path, mode: AnalysisMode) -> tuple[list[str], float]:
    """Every event's final status after a deterministic in-process replay with
    analysis `mode`, and its seconds."""
    events = read_events(path)
    embedded = EmbeddedRedis(home)
    url = embedded.start()
    try:
        settings = Settings(home=home, redis_url=url, clock="events", analysis=mode)
        r: redis.Redis[bytes] = redis.Redis.from_url(url)
        with Store.from_settings(settings, r, create=True) as store:
            pipeline = Pipeline(
                r=r,
                store=store,
                policies=PolicyStore(r, cache_s=float("inf")),
                checks=default_checks(),
                analysers=default_analysers(mode),
                batch_size=settings.batch_size,
                release_batch=settings.release_batch,
            )
            started = time.perf_counter()
            stepped.run(pipeline, NAMESPACE, events)
            took = time.perf_counter() - started
            found = stepped.statuses(pipeline, NAMESPACE, [e.event_id for e in events])
        r.close()
    finally:
        embedded.stop()
    print(f"in-process replay ({mode}): {took:.1f} s", file=sys.stderr)
    return found, took


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: `kind` of the text, refused unless above 0."""

    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=_positive(float), default=30.0)
    parser.add_argument(
        "--events", type=_positive(int), default=50_000, help="honest events (about)"
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="swarm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mode", choices=("incremental", "full"), default="incremental", help="analysis setting"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the identity check")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fg-bench-month-"))
    try:
        honest = replace(
            HonestParams(),
            events=args.events,
            accounts=max(300, round(args.events * ACCOUNTS_PER_EVENT)),
            span_days=args.days,
        )
        sim = generate(args.scenario, seed=args.seed, honest=honest, namespace=NAMESPACE)
        path = root / "stream.jsonl"
        write(sim, path)
        print(f"stream: {len(sim.events):,} events over {args.days} days", file=sys.stderr)
        replay_s, full = worker_replay(path, root / "analysed", args.mode)
        ingest_s, bare = worker_replay(path, root / "ingest", "off")
        figures: dict[str, Any] = {
            "events": len(sim.events),
            "days": args.days,
            "scenario": args.scenario,
            "mode": args.mode,
            "replay_s": round(replay_s, 2),
            "ingest_only_s": round(ingest_s, 2),
            "ratio": round(replay_s / ingest_s, 2),
            "analysis_s": full["analysis"],
            "analysis_runs": full["analysis_runs"],
            "analysis_s_by_analyser": {a: full[f"analysis:{a}"] for a in ANALYSERS},
            "statuses": full["statuses"],
            "statuses_ingest_only": bare["statuses"],
        }
        if not args.no_check:
            incremental, inc_s = inprocess_statuses(path, root / "check-inc", "incremental")
            recomputed, full_s = inprocess_statuses(path, root / "check-full", "full")
            differ = sum(a != b for a, b in zip(incremental, recomputed, strict=True))
            figures.update(
                identical_to_full=differ == 0,
                statuses_differing=differ,
                inprocess_incremental_s=round(inc_s, 2),
                inprocess_full_s=round(full_s, 2),
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
