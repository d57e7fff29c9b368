"""Simulated feedback streams with ground truth, on scikit-learn's bundled data.

`generate(scenario, dataset, seed)` returns a `Simulation`: the events
(docs/architecture.md's contract, sorted by `received_at`), the truth of each
(`population`, `is_poison`) and what the attack wanted (`Attack`), so a replay's
outcome and the retrained model can be scored. The honest population is the same for
every scenario of a seed and data set (its generator is seeded apart from the
attack's), so scenarios differ only by their attack. `write(sim, path)` writes the
replay file and its `.truth.jsonl` and `.meta.json` sidecars.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.simulate import attacks
from feedbackguard.simulate.attacks import Attack
from feedbackguard.simulate.data import DATASETS, DatasetName, load, product_model
from feedbackguard.simulate.honest import HONEST, HonestParams
from feedbackguard.simulate.honest import generate as honest_stream
from feedbackguard.simulate.world import Truth, World

__all__ = [
    "DATASETS",
    "HONEST",
    "LABEL_KINDS",
    "QUICK",
    "SCENARIOS",
    "Attack",
    "DatasetName",
    "HonestParams",
    "Simulation",
    "Truth",
    "generate",
    "truth_path",
    "write",
]

AttackFn = Callable[[World, HonestParams, Any], Attack]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: AttackFn
    params: Any
    doc: str


def _scenario(name: str, run: AttackFn, params: Any) -> Scenario:
    doc = (run.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Scenario(name, run, params, doc)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _scenario("swarm", attacks.swarm, attacks.SwarmParams()),
        _scenario("brigade", attacks.brigade, attacks.BrigadeParams()),
        _scenario("backdoor", attacks.backdoor, attacks.BackdoorParams()),
        _scenario("noise", attacks.noise, attacks.NoiseParams()),
        _scenario("mass_report", attacks.mass_report, attacks.MassReportParams()),
        _scenario("compromised", attacks.compromised, attacks.CompromisedParams()),
        _scenario("slow_drip", attacks.slow_drip, attacks.SlowDripParams()),
        _scenario("honest", attacks.no_attack, None),
    )
}
# A small honest population for tests and `bench detect --quick`.
QUICK = HonestParams(accounts=300, events=2000, span_days=1.0, campus_accounts=40,
                     viral_accounts=40)  # fmt: skip


@dataclass
class Simulation:
    scenario: str
    dataset: DatasetName
    seed: int
    honest: HonestParams
    attack: Attack
    events: list[FeedbackEvent]
    truth: dict[str, Truth]

    def meta(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "dataset": self.dataset,
            "seed": self.seed,
            "honest": asdict(self.honest),
            "attack": asdict(self.attack),
            "events": len(self.events),
        }


def generate(
    scenario: str,
    dataset: DatasetName = "digits",
    seed: int = 0,
    *,
    honest: HonestParams | None = None,
    params: Any = None,
    namespace: str = "default",
) -> Simulation:
    """The named scenario's stream on `dataset`: honest traffic plus the attack (with
    its default parameters unless `params` is given), deterministic for a seed."""
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    spec = SCENARIOS[scenario]
    honest = honest or HonestParams()
    data = load(dataset)
    model = product_model(dataset)
    world = World(data, model, random.Random(f"honest:{dataset}:{seed}"), namespace)
    honest_stream(world, honest)
    world.rng = random.Random(f"attack:{scenario}:{dataset}:{seed}")
    attack = spec.run(world, honest, params if params is not None else spec.params)
    events = sorted(world.events, key=lambda e: (e.received_at, e.event_id))
    return Simulation(scenario, dataset, seed, honest, attack, events, world.truth)


def renamespaced(sim: Simulation, namespace: str) -> Simulation:
    """The same stream in another namespace (event ids unchanged)."""
    events = [e.model_copy(update={"namespace": namespace}) for e in sim.events]
    return replace(sim, events=events)


def truth_path(path: Path) -> Path:
    return path.with_name(path.name + ".truth.jsonl") if path.suffix != ".jsonl" else \
        path.with_suffix(".truth.jsonl")  # fmt: skip


def meta_path(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def write(sim: Simulation, path: Path) -> None:
    """The replay file (one event per line), `<stem>.truth.jsonl` (event_id,
    population, is_poison) and `<stem>.meta.json` (scenario, parameters, targets)."""
    with path.open("wb") as fh:
        for event in sim.events:
            fh.write(event.to_json() + b"\n")
    with truth_path(path).open("wb") as fh:
        for event in sim.events:
            t = sim.truth[event.event_id]
            fh.write(orjson.dumps({"event_id": event.event_id, "population": t.population,
                                   "is_poison": t.is_poison}) + b"\n")  # fmt: skip
    meta_path(path).write_bytes(orjson.dumps(sim.meta(), option=orjson.OPT_INDENT_2))
