"""`feedbackguard bench detect`: every attack scenario through the real pipeline, scored.

For each scenario (`feedbackguard.simulate`), one seeded stream of honest traffic plus
the attack goes through:

* **feedbackguard**: `feedbackguard.pipeline.replay.replay()`, i.e. the real pipeline in worker
  processes with every default check and analyser and the default policy (probation
  included), in a fresh namespace with its own SQLite store; the retrained model is
  trained on the store's live rows (`Store.iter_rows`, what an export contains);
* **rate limit only** (the Flask-Limiter setup a team would write today): the real
  `Pipeline` in process with `RateLimitCheck` alone and no analysers, same policy;
* **no defence** (everything admitted) and the **clean-data oracle** (everything but
  the poison);
* the offline peers as filters on the same stream (`feedbackguard.bench.peers`):
  IBM ART's ProvenanceDefense and cleanlab's find_label_issues, timed.

Scores per run: poison admitted, honest admitted, honest sent to review (share of each
population's events), clean accuracy of the retrained model on the held-out split,
attack success (`feedbackguard.bench.impact`), seconds; for feedbackguard also the
time to detection: event time from the attack's start to its first flagged event
(review, rejected or quarantined), a flag at ingest counted at the event's own time and
a flag by analysis at the replay's ingested event-time frontier when it was written.
"""

from __future__ import annotations

import bisect
import io
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from feedbackguard import inbox_writer, keys
from feedbackguard.bench.impact import impact
from feedbackguard.bench.peers import art_provenance, cleanlab_filter
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.connection import redis_url
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.replay import replay
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.simulate import (
    HONEST,
    LABEL_KINDS,
    QUICK,
    SCENARIOS,
    DatasetName,
    Simulation,
    generate,
    renamespaced,
    write,
)
from feedbackguard.simulate.data import Dataset, load
from feedbackguard.store import Store

DEFENCES = ("feedbackguard", "ratelimit", "none", "oracle", "art", "cleanlab")
ATTACK_SCENARIOS = tuple(s for s in SCENARIOS if s != "honest")
BATCH = 500
FLAGGED = frozenset({"review", "rejected", "quarantined"})
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
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "poison_admitted": self.poison_admitted,
            "honest_admitted": self.honest_admitted,
            "honest_review": self.honest_review,
            "clean_acc": self.clean_acc,
            "attack_success": self.attack_success,
            "honest_correct_admitted": self.honest_correct_admitted,
            "honest_correct_review": self.honest_correct_review,
            "honest_wrong_review": self.honest_wrong_review,
            "seconds": round(self.seconds, 2),
        }
        if self.note:
            out["note"] = self.note
        out.update(self.extra)
        return out


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


def score(
    sim: Simulation, statuses: Mapping[str, str], kept: Sequence[FeedbackEvent], seconds: float
) -> RunScore:
    """Shares of each population by final status, and the model retrained on `kept`."""
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    honest = [e for e in sim.events if sim.truth[e.event_id].population == HONEST]
    data = load(sim.dataset)
    mistaken = [_mistaken(e, data) for e in honest]
    correct = [e for e, m in zip(honest, mistaken, strict=True) if not m]
    wrong = [e for e, m in zip(honest, mistaken, strict=True) if m]
    model = impact(kept, data, sim.attack)

    def count(events: Sequence[FeedbackEvent], status: str) -> int:
        return sum(statuses.get(e.event_id) == status for e in events)

    return RunScore(
        poison_admitted=_share(count(poison, "admitted"), len(poison)),
        honest_admitted=_share(count(honest, "admitted"), len(honest)) or 0.0,
        honest_review=_share(count(honest, "review"), len(honest)) or 0.0,
        clean_acc=model.clean_acc,
        attack_success=model.attack_success,
        seconds=seconds,
        honest_correct_admitted=_share(count(correct, "admitted"), len(correct)),
        honest_correct_review=_share(count(correct, "review"), len(correct)),
        honest_wrong_review=_share(count(wrong, "review"), len(wrong)),
    )


def _mistaken(event: FeedbackEvent, data: Dataset) -> bool:
    """An honest label that is wrong (the simulated population's label noise)."""
    if event.kind not in LABEL_KINDS:
        return False
    index = int(event.item_id.rsplit("-", 1)[1])
    return event.value != data.label(index)


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


def run_feedbackguard(sim: Simulation, settings: Settings, workdir: Path, run_id: str) -> RunScore:
    namespace = f"bench-{sim.scenario}-{run_id}"
    stream = renamespaced(sim, namespace)
    path = workdir / f"{sim.scenario}.jsonl"
    write(stream, path)
    store_url = f"sqlite:///{(workdir / f'{sim.scenario}-fg.db').resolve()}"
    here = settings.model_copy(update={"store_url": store_url})
    events = stream.events
    frontier: list[tuple[float, float]] = []  # (wall time, ingested event time)

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "decide" and done > 0:
            frontier.append((time.time(), events[min(done, total) - 1].received_at.timestamp()))

    started = time.monotonic()
    replay(path, here, decisions_out=io.BytesIO(), progress=progress)
    seconds = time.monotonic() - started
    r: redis.Redis[bytes] = redis.Redis.from_url(redis_url(here))
    try:
        records = _records(r, namespace, [e.event_id for e in events])
    finally:
        r.close()
    statuses = {i: rec.decision.status for i, rec in records.items()}
    with Store.from_settings(here) as store:
        kept = [item.event for item in store.iter_rows()]
    run = score(sim, statuses, kept, seconds)
    run.extra["time_to_detection_s"] = _time_to_detection(sim, records, frontier)
    run.extra["reasons"] = _reasons(sim, records, poison=True)
    run.extra["honest_reasons"] = _reasons(sim, records, poison=False)
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


def run_ratelimit(sim: Simulation, settings: Settings, workdir: Path, run_id: str) -> RunScore:
    """The real Pipeline with only the per-account/ip/... rate limits (default policy)."""
    namespace = f"bench-rl-{sim.scenario}-{run_id}"
    events = renamespaced(sim, namespace).events
    r: redis.Redis[bytes] = redis.Redis.from_url(redis_url(settings))
    started = time.monotonic()
    store = Store(f"sqlite:///{(workdir / f'{sim.scenario}-rl.db').resolve()}", b"b" * 32)
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
        # Keep replay's workers (later scenarios) from analysing this namespace.
        r.srem(keys.namespaces(), namespace)
        seconds = time.monotonic() - started
        records = _records(r, namespace, [e.event_id for e in events])
        kept = [item.event for item in store.iter_rows()]
    finally:
        store.close()
        r.close()
    statuses = {i: rec.decision.status for i, rec in records.items()}
    return score(sim, statuses, kept, seconds)


# --- the whole bench ----------------------------------------------------------------------


def run_scenario(
    name: str, dataset: DatasetName, seed: int, quick: bool, settings: Settings,
    workdir: Path, run_id: str, echo: Echo,
) -> dict[str, Any]:  # fmt: skip
    sim = generate(name, dataset, seed, honest=QUICK if quick else None)
    poison = sum(t.is_poison for t in sim.truth.values())
    echo(f"{name}: {len(sim.events)} events, {poison} poison")
    out: dict[str, Any] = {"events": len(sim.events), "poison": poison,
                           "goal": sim.attack.goal}  # fmt: skip
    runs: dict[str, RunScore] = {}
    runs["feedbackguard"] = run_feedbackguard(sim, settings, workdir, run_id)
    echo(f"  feedbackguard  {runs['feedbackguard'].seconds:.1f}s")
    runs["ratelimit"] = run_ratelimit(sim, settings, workdir, run_id)
    everything = {e.event_id for e in sim.events}
    runs["none"] = filtered(sim, everything, 0.0)
    clean = {e.event_id for e in sim.events if not sim.truth[e.event_id].is_poison}
    runs["oracle"] = filtered(sim, clean, 0.0)
    data = load(dataset)
    for key, peer in (("art", art_provenance), ("cleanlab", cleanlab_filter)):
        started = time.monotonic()
        kept, note = peer(sim.events, data)
        seconds = time.monotonic() - started
        if kept is None:
            out[key] = {"skipped": note}
            echo(f"  {key}: skipped ({note})")
            continue
        runs[key] = filtered(sim, kept, seconds, note)
        echo(f"  {key}  {seconds:.1f}s")
    out.update({key: run.as_dict() for key, run in runs.items()})
    return out


def run(
    scenarios: Sequence[str] = ATTACK_SCENARIOS,
    dataset: DatasetName = "digits",
    seed: int = 0,
    quick: bool = False,
    settings: Settings | None = None,
    echo: Echo = lambda line: None,
) -> dict[str, Any]:
    """Every scenario through every defence; the report as one JSON-able dict.

    Without a Redis URL in `settings` (or FEEDBACKGUARD_REDIS_URL) a private embedded
    Redis is started in a temporary home and stopped at the end, so the default policy
    applies and nothing of a deployment is touched."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="fg-bench-") as tmp:
        workdir = Path(tmp)
        base = settings or Settings()
        embedded = None
        if base.redis_url is None:
            from feedbackguard.embedded import EmbeddedRedis

            embedded = EmbeddedRedis(workdir / "home")
            base = base.model_copy(update={"home": workdir / "home", "redis_url": embedded.start()})
        try:
            results = {
                name: run_scenario(name, dataset, seed, quick, base, workdir, run_id, echo)
                for name in scenarios
            }
        finally:
            if embedded is not None:
                embedded.stop()
    return {
        "bench": "detect",
        "dataset": dataset,
        "seed": seed,
        "quick": quick,
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "checks": [c.name for c in default_checks()],
        "analysers": [type(a).__name__ for a in default_analysers()],
        "scenarios": results,
        "seconds": round(time.monotonic() - started, 1),
    }


def dumps(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report)
