"""Simulated feedback streams with ground truth, on scikit-learn's bundled data.

`generate(scenario, dataset, seed)` returns a `Simulation`: the events
(docs/architecture.md's contract, sorted by `received_at`), the truth of each
(`population`, `is_poison`, `correct`, `crowd`) and what the attack wanted (`Attack`),
so a replay's outcome and the retrained model can be scored. A scenario is an attack
family (`FAMILIES`, `attacks.py`), honest traffic alone, or an honest crowd trap
(`CROWDS`, `crowds.py`). The honest population is the same for every scenario of a
seed and data set (its generator is seeded apart from the attack's; the power-users
trap stretches it), so scenarios differ only by their attack or crowd.
`write(sim, path)` writes the replay file and its `.truth.jsonl` and `.meta.json`
sidecars. The sweeps over each family's parameters are in `sweeps.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.simulate import attacks, crowds
from feedbackguard.simulate.attacks import Attack
from feedbackguard.simulate.data import DATASETS, DatasetName, load, product_model
from feedbackguard.simulate.honest import HONEST, HonestParams, bad_items
from feedbackguard.simulate.honest import generate as honest_stream
from feedbackguard.simulate.world import Truth, World

__all__ = [
    "CROWDS",
    "DATASETS",
    "FAMILIES",
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
Kind = Literal["attack", "honest", "crowd"]
Population = Callable[[HonestParams], HonestParams]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: Kind
    run: AttackFn
    params: Any
    doc: str
    # How the scenario changes the honest population (the power-users trap's longer,
    # heavier-tailed stream); None keeps it.
    population: Population | None = None


def _scenario(
    name: str, kind: Kind, run: AttackFn, params: Any, population: Population | None = None
) -> Scenario:
    doc = (run.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Scenario(name, kind, run, params, doc, population)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _scenario("swarm", "attack", attacks.swarm, attacks.SwarmParams()),
        _scenario("brigade", "attack", attacks.brigade, attacks.BrigadeParams()),
        _scenario("backdoor", "attack", attacks.backdoor, attacks.BackdoorParams()),
        _scenario("noise", "attack", attacks.noise, attacks.NoiseParams()),
        _scenario("mass_report", "attack", attacks.mass_report, attacks.MassReportParams()),
        _scenario("compromised", "attack", attacks.compromised, attacks.CompromisedParams()),
        _scenario("slow_drip", "attack", attacks.slow_drip, attacks.SlowDripParams()),
        _scenario("honest", "honest", attacks.no_attack, None),
        _scenario("classroom", "crowd", crowds.classroom, crowds.ClassroomParams()),
        _scenario("signup_wave", "crowd", crowds.signup_wave, crowds.SignupWaveParams()),
        _scenario("campus_nat", "crowd", crowds.campus_nat, crowds.CampusParams()),
        _scenario("carrier_nat", "crowd", crowds.carrier_nat, crowds.CarrierNatParams()),
        _scenario("viral_reports", "crowd", crowds.viral_reports, crowds.ViralReportsParams()),
        _scenario(
            "power_users",
            "crowd",
            crowds.power_users,
            crowds.PowerUsersParams(),
            lambda h: crowds.power_population(h, crowds.PowerUsersParams()),
        ),
    )
}
FAMILIES = tuple(s.name for s in SCENARIOS.values() if s.kind == "attack")
CROWDS = tuple(s.name for s in SCENARIOS.values() if s.kind == "crowd")
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
    # Pool rows that really deserve a report.
    bad_items: frozenset[int] = frozenset()

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
    """The named scenario's stream on `dataset`: honest traffic plus the attack or crowd
    (with its default parameters unless `params` is given), deterministic for a seed."""
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    spec = SCENARIOS[scenario]
    honest = honest or HonestParams()
    if spec.population is not None:
        honest = spec.population(honest)
    data = load(dataset)
    model = product_model(dataset)
    world = World(data, model, random.Random(f"honest:{dataset}:{seed}"), namespace)
    world.bad_items = bad_items(world, honest, random.Random(f"bad:{dataset}:{seed}"))
    honest_stream(world, honest)
    world.rng = random.Random(f"attack:{scenario}:{dataset}:{seed}")
    attack = spec.run(world, honest, params if params is not None else spec.params)
    events = sorted(world.events, key=lambda e: (e.received_at, e.event_id))
    return Simulation(scenario, dataset, seed, honest, attack, events, world.truth,
                      world.bad_items)  # fmt: skip


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
    population, is_poison, correct, crowd) and `<stem>.meta.json` (scenario,
    parameters, targets)."""
    with path.open("wb") as fh:
        for event in sim.events:
            fh.write(event.to_json() + b"\n")
    with truth_path(path).open("wb") as fh:
        for event in sim.events:
            t = sim.truth[event.event_id]
            fh.write(orjson.dumps({"event_id": event.event_id, **asdict(t)}) + b"\n")
    meta_path(path).write_bytes(orjson.dumps(sim.meta(), option=orjson.OPT_INDENT_2))
