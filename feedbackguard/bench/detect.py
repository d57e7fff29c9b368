"""`feedbackguard bench detect`: every attack family over a sweep of its parameters and
every honest crowd trap, through the real pipeline, scored on the worst case.

Each run is one seeded stream (`feedbackguard.simulate`): honest traffic plus one
attack at one sweep point (`feedbackguard.simulate.sweeps`), or honest traffic plus one
honest crowd. It goes through:

* **feedbackguard**: `feedbackguard.pipeline.replay.replay()`, i.e. the real pipeline in a
  worker process with every default check and analyser and the default policy
  (probation included), in a fresh namespace with its own SQLite store; the retrained
  model is trained on the store's live rows (`Store.iter_rows`, what an export holds);
* **rate limit only** (the Flask-Limiter setup a team would write today): the real
  `Pipeline` in process with `RateLimitCheck` alone and no analysers, same policy;
* **no defence** (everything admitted);
* at each family's `default` point only (the per-scenario figures): the **clean-data
  oracle** (everything but the poison) and the offline peers as filters on the same
  stream (`feedbackguard.bench.peers`): IBM ART's ProvenanceDefense and cleanlab's
  find_label_issues, timed.

Scores per run (`score`): poison admitted, honest admitted / in review, honest correct
feedback admitted (a label equal to the true label, a report of an item that deserves
one), clean accuracy of the retrained model on the held-out split, attack success
(`feedbackguard.bench.impact`), benign items taken down (admitted reports >= the
takedown threshold on an item that does not deserve them), review share (events in
review at the end over all events), the top 1 % of honest accounts by activity
(power users) and honest corrections of confident model mistakes (model fixes): their
correct feedback admitted; the crowd's correct feedback admitted on a crowd trap; for
feedbackguard also the time to detection (event time from the attack's start to its
first flagged event), the commonest reasons and the review queue left at the end
(`feedbackguard.bench.review_load`, read before the run's namespace is dropped): cases
opened and moderator actions needed to clear it per 10,000 events, the place of the
first case holding honest events in triage order, and whether every waiting poison
event is in a case above it.

The report takes the worst case of each family over its points (`worst`, with the
point that gave it, and the baselines' worst), each crowd's figure (`crowds`) and the
worst over every run of the honest figures. Runs go through a process pool (`jobs`),
each process a `Lane`: its own embedded Redis and one long-lived worker with its own
store, through which its runs replay one after another, each in a namespace and with
event ids of its own (a worker costs seconds of imports to start; one per run would
add minutes).
"""

from __future__ import annotations

import bisect
import io
import multiprocessing
import multiprocessing.util
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from feedbackguard import inbox_writer, keys
from feedbackguard.bench.impact import impact
from feedbackguard.bench.peers import art_provenance, cleanlab_filter
from feedbackguard.bench.review_load import measure as review_load
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.connection import redis_url
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.replay import replay, start_workers, stop_workers
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.simulate import (
    CROWDS,
    FAMILIES,
    HONEST,
    QUICK,
    SCENARIOS,
    DatasetName,
    HonestParams,
    Simulation,
    generate,
    sweeps,
    write,
)
from feedbackguard.simulate.data import load
from feedbackguard.simulate.world import TAKEDOWN_REPORTS
from feedbackguard.store import Store

DEFENCES = ("feedbackguard", "ratelimit", "none", "oracle", "art", "cleanlab")
BASELINES = ("ratelimit", "none")
# Families whose every sweep point also runs the rate-limit-only baseline (the others
# run it at their default point: it costs as much as a replay's reading side, and only
# rates can stop a mass report without a detector).
RATE_LIMITED = frozenset({"mass_report"})
# The honest population of every sweep point and crowd trap: 2.5 days (room for a burst
# of two days), 500 accounts, 3,000 events. Each family's default point runs on the
# full population (`HonestParams()`), as the per-scenario figures always did.
SWEEP_POPULATION = HonestParams(accounts=500, events=3000, span_days=2.5, campus_accounts=40,
                                viral_accounts=50)  # fmt: skip
BATCH = 500
FLAGGED = frozenset({"review", "rejected", "quarantined"})
# A model output this confident that an honest correct label contradicts: a model fix.
CONFIDENT = 0.8
# Power users: this share of honest accounts, the most active.
POWER_SHARE = 0.01
# Per family, the worst of each figure over its points: the larger or the smaller value.
WORST: dict[str, Callable[[Iterable[float]], float]] = {
    "poison_admitted": max,
    "attack_success": max,
    "benign_taken_down": max,
    "honest_correct_admitted": min,
    "review_share": max,
    # The review queue left at the end (`feedbackguard.bench.review_load`; feedbackguard
    # only): cases opened and actions to clear it per 10,000 events, the place of the
    # first case holding honest events, and whether all waiting poison is above it.
    "review_cases": max,
    "review_actions": max,
    "first_honest_case_rank": min,
    "poison_cases_above_honest": min,
}
# Over every run (points and traps): the honest figures' worst, and the review load.
OVERALL: dict[str, Callable[[Iterable[float]], float]] = {
    "honest_correct_admitted": min,
    "power_users_correct_admitted": min,
    "model_fix_admitted": min,
    "review_share": max,
    "review_actions": max,
}
Echo = Callable[[str], None]


@dataclass
class RunScore:
    poison_admitted: float | None
    honest_admitted: float
    honest_review: float
    clean_acc: float | None
    attack_success: float | None
    seconds: float
    # The same shares over honest feedback that is right (honest labels that are wrong,
    # the population's label noise, are what a label-consistency check should catch).
    honest_correct_admitted: float | None = None
    honest_correct_review: float | None = None
    honest_wrong_review: float | None = None
    benign_taken_down: int = 0
    review_share: float = 0.0
    power_users_correct_admitted: float | None = None
    model_fix_admitted: float | None = None
    model_fix_events: int = 0
    crowd_correct_admitted: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 2)
        del out["extra"], out["note"]
        if self.crowd_correct_admitted is None:
            del out["crowd_correct_admitted"]
        if self.note:
            out["note"] = self.note
        out.update(self.extra)
        return out


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


def power_users(sim: Simulation) -> set[str]:
    """The top `POWER_SHARE` of honest accounts by number of events (at least one)."""
    counts = Counter(e.account_id for e in sim.events if sim.truth[e.event_id].population == HONEST)
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    return set(ranked[: max(1, round(POWER_SHARE * len(ranked)))])


def is_model_fix(event: FeedbackEvent) -> bool:
    """A label that contradicts a confident model output (it is a fix when correct)."""
    out = event.model_output
    return (event.kind in LABEL_KINDS and out is not None and out.confidence >= CONFIDENT
            and out.label != str(event.value))  # fmt: skip


def benign_taken_down(sim: Simulation, kept: Iterable[FeedbackEvent]) -> int:
    """Items that do not deserve a report yet collected enough admitted ones to go."""
    threshold = sim.attack.takedown or TAKEDOWN_REPORTS
    data = load(sim.dataset)
    reports = Counter(e.item_id for e in kept if e.kind == "report")
    bad = {data.item_id(i) for i in sim.bad_items}
    return sum(n >= threshold and item not in bad for item, n in reports.items())


def score(
    sim: Simulation, statuses: Mapping[str, str], kept: Sequence[FeedbackEvent], seconds: float
) -> RunScore:
    """Shares of each population by final status, and the model retrained on `kept`."""
    truth = sim.truth
    poison = [e for e in sim.events if truth[e.event_id].is_poison]
    honest = [e for e in sim.events if truth[e.event_id].population == HONEST]
    correct = [e for e in honest if truth[e.event_id].correct]
    wrong = [e for e in honest if truth[e.event_id].correct is False]
    power = power_users(sim)
    crowd = [e for e in correct if truth[e.event_id].crowd is not None]
    fixes = [e for e in correct if is_model_fix(e)]
    model = impact(kept, load(sim.dataset), sim.attack)

    def count(events: Sequence[FeedbackEvent], status: str) -> int:
        return sum(statuses.get(e.event_id) == status for e in events)

    def admitted(events: Sequence[FeedbackEvent]) -> float | None:
        return _share(count(events, "admitted"), len(events))

    return RunScore(
        poison_admitted=admitted(poison),
        honest_admitted=admitted(honest) or 0.0,
        honest_review=_share(count(honest, "review"), len(honest)) or 0.0,
        clean_acc=model.clean_acc,
        attack_success=model.attack_success,
        seconds=seconds,
        honest_correct_admitted=admitted(correct),
        honest_correct_review=_share(count(correct, "review"), len(correct)),
        honest_wrong_review=_share(count(wrong, "review"), len(wrong)),
        benign_taken_down=benign_taken_down(sim, kept),
        review_share=_share(count(sim.events, "review"), len(sim.events)) or 0.0,
        power_users_correct_admitted=admitted([e for e in correct if e.account_id in power]),
        model_fix_admitted=admitted(fixes),
        model_fix_events=len(fixes),
        crowd_correct_admitted=admitted(crowd) if crowd else None,
    )


def filtered(sim: Simulation, kept_ids: set[str], seconds: float, note: str = "") -> RunScore:
    statuses = {
        e.event_id: "admitted" if e.event_id in kept_ids else "rejected" for e in sim.events
    }
    run = score(sim, statuses, [e for e in sim.events if e.event_id in kept_ids], seconds)
    run.note = note
    return run


# --- feedbackguard through replay ---------------------------------------------------------


def _records(r: redis.Redis[bytes], namespace: str, ids: Sequence[str]) -> dict[str, ledger.Record]:
    out: dict[str, ledger.Record] = {}
    for start in range(0, len(ids), 2000):
        chunk = list(ids[start : start + 2000])
        for event_id, record in zip(chunk, ledger.load(r, namespace, chunk), strict=True):
            if record is not None:
                out[event_id] = record
    return out


def _forget(r: redis.Redis[bytes], namespace: str) -> None:
    """Drop a scored run's namespace, so the pump of later runs never visits it."""
    r.srem(keys.namespaces(), namespace)
    batch = []
    for key in r.scan_iter(match=keys.ns(namespace, "*"), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            r.unlink(*batch)
            batch = []
    if batch:
        r.unlink(*batch)


def unique(sim: Simulation, namespace: str, prefix: str) -> Simulation:
    """The stream in `namespace` with event ids unique to this run: a lane's worker
    and store serve many runs, and honest streams of one seed share their ids."""
    events = [e.model_copy(update={"namespace": namespace, "event_id": prefix + e.event_id})
              for e in sim.events]  # fmt: skip
    truth = {prefix + event_id: t for event_id, t in sim.truth.items()}
    return replace(sim, events=events, truth=truth)


def run_feedbackguard(sim: Simulation, lane: Lane, workdir: Path) -> RunScore:
    """`sim` (already in its own namespace) replayed through the lane's worker."""
    namespace = sim.events[0].namespace
    path = workdir / f"{namespace}.jsonl"
    write(sim, path)
    events = sim.events
    frontier: list[tuple[float, float]] = []  # (wall time, ingested event time)

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "decide" and done > 0:
            frontier.append((time.time(), events[min(done, total) - 1].received_at.timestamp()))

    lane.ensure_worker()
    with Store.from_settings(lane.settings) as store:
        rows_before = store.count()
    started = time.monotonic()
    replay(path, lane.settings, spawn_workers=False, decisions_out=io.BytesIO(),
           progress=progress)  # fmt: skip
    seconds = time.monotonic() - started
    r: redis.Redis[bytes] = redis.Redis.from_url(lane.url)
    try:
        records = _records(r, namespace, [e.event_id for e in events])
        queue = review_load(r, namespace, events, sim.truth)  # before _forget drops it
        _forget(r, namespace)
    finally:
        r.close()
    statuses = {i: rec.decision.status for i, rec in records.items()}
    # The model is retrained on the admitted events: the store's live rows of this run.
    # Reading them back costs more than the run; the row count checks they all are there.
    stored = sum(status in ("admitted", "quarantined") for status in statuses.values())
    with Store.from_settings(lane.settings) as store:
        new_rows = store.count() - rows_before
    if new_rows != stored:
        raise RuntimeError(f"{namespace}: {new_rows} new store rows for {stored} admitted or "
                           "quarantined events")  # fmt: skip
    kept = [e for e in events if statuses.get(e.event_id) == "admitted"]
    run = score(sim, statuses, kept, seconds)
    run.extra["time_to_detection_s"] = _time_to_detection(sim, records, frontier)
    run.extra["reasons"] = _reasons(sim, records, poison=True)
    run.extra["honest_reasons"] = _reasons(sim, records, poison=False)
    run.extra.update(queue.figures())
    run.extra["review_queue"] = queue.counts()
    return run


def _time_to_detection(
    sim: Simulation, records: dict[str, ledger.Record], frontier: list[tuple[float, float]]
) -> float | None:
    start = sim.attack.start
    if start is None:
        return None
    walls = [w for w, _ in frontier]
    last_event = max(e.received_at.timestamp() for e in sim.events)
    first: float | None = None
    for event in sim.events:
        if not sim.truth[event.event_id].is_poison or event.event_id not in records:
            continue
        trail = records[event.event_id].trail
        for n, decision in enumerate(trail):
            if decision.status not in FLAGGED:
                continue
            at = event.received_at.timestamp()
            if n > 0:  # found later, by analysis: the frontier when it was written
                k = bisect.bisect_left(walls, decision.decided_at.timestamp())
                at = max(at, frontier[k][1] if k < len(frontier) else last_event)
            first = at if first is None else min(first, at)
            break
    return None if first is None else round(first - start.timestamp(), 1)


def _reasons(sim: Simulation, records: dict[str, ledger.Record], poison: bool) -> dict[str, int]:
    """The commonest reason codes on the poison (or honest) events not admitted."""
    counts: dict[str, int] = {}
    for event_id, record in records.items():
        truth = sim.truth[event_id]
        mine = truth.is_poison if poison else truth.population == HONEST
        if mine and record.decision.status != "admitted":
            for reason in record.decision.reasons:
                counts[reason.code] = counts.get(reason.code, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:6])


# --- rate limit only, in process ----------------------------------------------------------


def run_ratelimit(sim: Simulation, lane: Lane, workdir: Path) -> RunScore:
    """The real Pipeline with only the per-account/ip/... rate limits (default policy),
    in process, on the lane's baseline database (its worker never sees it)."""
    namespace = sim.events[0].namespace
    events = sim.events
    r: redis.Redis[bytes] = redis.Redis.from_url(lane.url, db=lane.baseline_db)
    started = time.monotonic()
    store = Store(f"sqlite:///{(workdir / f'{namespace}-rl.db').resolve()}", b"b" * 32)
    try:
        pipeline = Pipeline(r=r, store=store, policies=PolicyStore(r, cache_s=60),
                            checks=[RateLimitCheck()], analysers=[])  # fmt: skip
        inbox.ensure_group(r, namespace)
        for start in range(0, len(events), BATCH):
            pipe = r.pipeline(transaction=False)
            inbox_writer.append(pipe, events[start : start + BATCH])
            pipe.execute()
            while pipeline.ingest_batch(namespace, "bench").entries:
                pass
        end = events[-1].received_at.timestamp() + pipeline.policies.current().policy.probation_s
        pipe = r.pipeline()
        ledger.advance_clock(pipe, namespace, end)
        pipe.execute()
        while pipeline.release(namespace):
            pass
        seconds = time.monotonic() - started
        records = _records(r, namespace, [e.event_id for e in events])
        _forget(r, namespace)
        kept = [item.event for item in store.iter_rows()]
    finally:
        store.close()
        r.close()
    statuses = {i: rec.decision.status for i, rec in records.items()}
    return score(sim, statuses, kept, seconds)


# --- lanes: where runs go -------------------------------------------------------------------


@dataclass
class Lane:
    """One Redis and one long-lived worker (with its store) that run after run replays
    through; the rate-limit baseline runs on another database of the same Redis.

    A worker costs seconds of imports to start: one per lane, not one per run."""

    settings: Settings  # redis_url, home and the lane's store_url
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return redis_url(self.settings)

    @property
    def baseline_db(self) -> int:
        client: redis.Redis[bytes] = redis.Redis.from_url(self.url)
        try:
            return int(client.connection_pool.connection_kwargs.get("db", 0)) + 1
        finally:
            client.close()

    def ensure_worker(self) -> None:
        """Start the lane's worker, or start it again if it died."""
        if not self.workers or any(w.poll() is not None for w in self.workers):
            stop_workers(self.workers)
            self.workers = start_workers(1, self.settings, self.url)

    def close(self) -> None:
        stop_workers(self.workers)
        self.workers = []


def lane(url: str, home: Path, workdir: Path) -> Lane:
    store_url = f"sqlite:///{(workdir / 'store.db').resolve()}"
    settings = Settings(redis_url=url, home=home, store_url=store_url, clock="events")
    # The lane's store and key exist before its worker or its first run opens them.
    Store.from_settings(settings, create=True).close()
    return Lane(settings)


# --- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One stream to run: a family's sweep point or a crowd trap."""

    key: str  # "mass_report/corner-3", "crowd/classroom"
    scenario: str
    point: str
    design: str
    params: Any
    seed: int
    honest: HonestParams
    full: bool  # also the oracle and the offline peers (the per-scenario figures)
    rate_limit: bool = True  # also the rate-limit-only baseline


def run_job(job: Job, dataset: DatasetName, lane: Lane, workdir: Path, run_id: str,
            number: int) -> dict[str, Any]:  # fmt: skip
    """Generate the job's stream and score every defence on it."""
    raw = generate(job.scenario, dataset, job.seed, honest=job.honest, params=job.params)
    sim = unique(raw, f"bench-{number}-{run_id}", f"{number}-")
    out: dict[str, Any] = {
        "point": job.point, "design": job.design, "seed": job.seed,
        "params": asdict(job.params) if job.params is not None else None,
        "events": len(sim.events), "poison": sum(t.is_poison for t in sim.truth.values()),
        "goal": sim.attack.goal,
    }  # fmt: skip
    runs: dict[str, RunScore] = {"feedbackguard": run_feedbackguard(sim, lane, workdir)}
    if job.rate_limit:
        runs["ratelimit"] = run_ratelimit(sim, lane, workdir)
    runs["none"] = filtered(sim, {e.event_id for e in sim.events}, 0.0)
    if job.full:
        clean = {e.event_id for e in sim.events if not sim.truth[e.event_id].is_poison}
        runs["oracle"] = filtered(sim, clean, 0.0)
        data = load(dataset)
        for key, peer in (("art", art_provenance), ("cleanlab", cleanlab_filter)):
            started = time.monotonic()
            kept, note = peer(sim.events, data)
            if kept is None:
                out[key] = {"skipped": note}
                continue
            runs[key] = filtered(sim, kept, time.monotonic() - started, note)
    out.update({key: run.as_dict() for key, run in runs.items()})
    return out


# A pool process's lane, built from the (url, home, workdir) it takes from the queue.
_lane: Lane | None = None


def _claim(lanes: Any) -> None:
    global _lane
    url, home, workdir = lanes.get()
    _lane = lane(url, home, workdir)
    # Stop the lane's worker when the pool shuts this process down.
    multiprocessing.util.Finalize(None, _lane.close, exitpriority=10)


def _pooled(job: Job, dataset: DatasetName, workdir: Path, run_id: str,
            number: int) -> dict[str, Any]:  # fmt: skip
    assert _lane is not None
    return run_job(job, dataset, _lane, workdir, run_id, number)


# --- the whole bench ----------------------------------------------------------------------


def jobs_for(families: Sequence[str], crowds: Sequence[str], seed: int, quick: bool,
             random_points: int) -> list[Job]:  # fmt: skip
    """Every run of the bench: each family's sweep points, then each crowd trap."""
    population = QUICK if quick else SWEEP_POPULATION
    out = []
    for family in families:
        for point in sweeps.points(family, seed, random_points=random_points, quick=quick):
            default = point.design == "default"
            honest = population if quick or not default else HonestParams()
            out.append(Job(point.key, family, point.name, point.design, point.params,
                           point.seed, honest, full=default,
                           rate_limit=default or family in RATE_LIMITED))  # fmt: skip
    for trap in crowds:
        out.append(Job(f"crowd/{trap}", trap, trap, "crowd", SCENARIOS[trap].params, seed,
                       population, full=False, rate_limit=False))  # fmt: skip
    return out


Pick = Callable[[Iterable[float]], float]


def _worst(
    points: Sequence[dict[str, Any]], defence: str, metrics: Mapping[str, Pick]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worst of each metric over `points` for `defence`, and the point giving it."""
    values: dict[str, Any] = {}
    where: dict[str, Any] = {}
    for metric, pick in metrics.items():
        seen = [(p[defence][metric], p["key"]) for p in points
                if p.get(defence, {}).get(metric) is not None]  # fmt: skip
        if not seen:
            values[metric], where[metric] = None, None
            continue
        values[metric] = pick(v for v, _ in seen)
        where[metric] = next(k for v, k in seen if v == values[metric])
    return values, where


def summarise(results: Mapping[str, dict[str, Any]], jobs: Sequence[Job]) -> dict[str, Any]:
    """Families (points, worst, baselines), crowds and the honest figures' worst."""
    by_key = {job.key: {"key": job.key, **results[job.key]} for job in jobs}
    families: dict[str, Any] = {}
    scenarios: dict[str, Any] = {}
    for job in jobs:
        if job.design == "crowd":
            continue
        family = families.setdefault(job.scenario, {"points": []})
        family["points"].append(by_key[job.key])
        if job.full:
            scenarios[job.scenario] = results[job.key]
    for family in families.values():
        family["worst"], family["worst_point"] = _worst(family["points"], "feedbackguard", WORST)
        family["baselines"] = {d: _worst(family["points"], d, WORST)[0] for d in BASELINES}
    crowd_runs = {job.point: by_key[job.key] for job in jobs if job.design == "crowd"}
    crowds = {
        name: run["feedbackguard"].get("crowd_correct_admitted",
                                       run["feedbackguard"]["power_users_correct_admitted"])
        for name, run in crowd_runs.items()
    }  # fmt: skip
    overall, where = _worst(list(by_key.values()), "feedbackguard", OVERALL)
    return {
        "families": families,
        "crowds": crowds,
        "crowd_runs": crowd_runs,
        **overall,
        "worst_at": where,
        "scenarios": scenarios,
    }


def run(
    families: Sequence[str] = FAMILIES,
    dataset: DatasetName = "digits",
    seed: int = 0,
    quick: bool = False,
    settings: Settings | None = None,
    echo: Echo = lambda line: None,
    *,
    crowds: Sequence[str] = CROWDS,
    random_points: int = sweeps.RANDOM_POINTS,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Every family's sweep and every crowd trap through every defence; the report as
    one JSON-able dict.

    Without a Redis URL in `settings` (or FEEDBACKGUARD_REDIS_URL) each of `jobs`
    processes (default: one per core) gets a private embedded Redis in a temporary home,
    stopped at the end, so the default policy applies and nothing of a deployment is
    touched; with one, the runs go one after another on it."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    base = settings or Settings()
    todo = jobs_for(families, crowds, seed, quick, random_points)
    # The longest runs first, so the pool does not end waiting on one of them.
    order = sorted(range(len(todo)), key=lambda n: (not todo[n].full, n))
    width = 1 if base.redis_url is not None else max(1, jobs or os.cpu_count() or 1)
    width = min(width, len(todo)) or 1
    results: dict[str, dict[str, Any]] = {}

    def done(job: Job, result: dict[str, Any]) -> None:
        results[job.key] = result
        fg = result["feedbackguard"]
        echo(f"{job.key}: {result['events']} events, poison admitted {fg['poison_admitted']}, "
             f"honest right admitted {fg['honest_correct_admitted']}, {fg['seconds']:.0f} s "
             f"[{len(results)}/{len(todo)}]")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="fg-bench-") as tmp:
        workdir = Path(tmp)
        servers = []
        if base.redis_url is None:
            from feedbackguard.embedded import EmbeddedRedis

            servers = [EmbeddedRedis(workdir / f"home-{k}") for k in range(width)]
        try:
            homes = [(s.start(), s.home) for s in servers] or [(redis_url(base), workdir)]
            places = []
            for k, (url, home) in enumerate(homes):
                (workdir / f"lane-{k}").mkdir()
                places.append((url, home, workdir / f"lane-{k}"))
            if width == 1:
                only = lane(*places[0])
                try:
                    for n in order:
                        done(todo[n], run_job(todo[n], dataset, only, workdir, run_id, n))
                finally:
                    only.close()
            else:
                context = multiprocessing.get_context("spawn")
                queue = context.Queue()
                for place in places:
                    queue.put(place)
                with ProcessPoolExecutor(width, mp_context=context, initializer=_claim,
                                         initargs=(queue,)) as pool:  # fmt: skip
                    futures = {
                        pool.submit(_pooled, todo[n], dataset, workdir, run_id, n): todo[n]
                        for n in order
                    }
                    try:
                        for future in as_completed(futures):
                            done(futures[future], future.result())
                    except BaseException:
                        for future in futures:  # finish the runs under way, start no more
                            future.cancel()
                        raise
        finally:
            for server in servers:
                server.stop()
    return {
        "bench": "detect",
        "dataset": dataset,
        "seed": seed,
        "quick": quick,
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "checks": [c.name for c in default_checks()],
        "analysers": [type(a).__name__ for a in default_analysers()],
        "jobs": width,
        "sweep": {
            "design": "default + OA(8,7,2,2) corners + issue cases + random interior",
            "random_points": random_points,
            "runs": len(todo),
        },
        **summarise(results, todo),
        "seconds": round(time.monotonic() - started, 1),
    }


def dumps(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report)
