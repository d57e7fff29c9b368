"""Attack scenarios from the threat model, each a seeded function with parameters.

Every attack emits its events into a `World` (truth: its population, and whether each
event is poison: camouflage and an account's honest history are not) and returns an
`Attack` saying what it wants, so that the benchmark can score its success on the
retrained model:

* `targeted`   specific items (`targets`) should be predicted `target_label`;
* `class_flip` clean test inputs of `source_label` should be predicted `target_label`;
* `backdoor`   clean test inputs with the `trigger` applied should be predicted
               `target_label`;
* `availability` the model should just get worse (no success rate, see clean accuracy);
* `reports`    benign `targets` should collect `takedown` admitted reports each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from feedbackguard.simulate.data import FloatArray
from feedbackguard.simulate.honest import HonestParams
from feedbackguard.simulate.world import DAY, HOUR, Account, World

Goal = Literal["targeted", "class_flip", "backdoor", "availability", "reports", "none"]
# Residential-proxy exits: addresses scattered over consumer ISP ranges, one per account.
RESIDENTIAL_FIRST_OCTETS = (24, 50, 66, 68, 71, 73, 75, 76, 96, 98, 99, 107, 174)
# Datacenter ranges a cheap swarm comes from (a few /24s).
DATACENTER_PREFIXES = ("185.220.101", "45.134.26", "193.32.162")


@dataclass(frozen=True)
class Trigger:
    """A feature pattern: the listed features set to `value` (a pixel patch on digits)."""

    indices: tuple[int, ...]
    value: float

    def apply(self, x: FloatArray) -> FloatArray:
        out = np.array(x, dtype=np.float64, copy=True)
        out[..., list(self.indices)] = self.value
        return out


@dataclass(frozen=True)
class Attack:
    """What the attack wants (for scoring) and when it started (event time)."""

    goal: Goal
    start: datetime | None
    params: dict[str, Any] = field(default_factory=dict)
    targets: tuple[int, ...] = ()
    source_label: str | None = None
    target_label: str | None = None
    trigger: Trigger | None = None
    takedown: int = 0


def _pick_labels(world: World) -> tuple[str, str]:
    source, target = world.rng.sample(list(world.data.labels), 2)
    return source, target


def _quiet_items(world: World, label: str, k: int) -> list[int]:
    """k pool items of `label` (the attack picks its targets at random among them)."""
    pool = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) == label]
    return sorted(world.rng.sample(pool, min(k, len(pool))))


def _fresh(world: World, prefix: str, n: int, at: float, hours: tuple[float, float],
           ips: Callable[[int], list[str]]) -> list[Account]:  # fmt: skip
    """n accounts created `hours` before event time `at`."""
    ua = world.rng.choice(("python-requests/2.32", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"))
    return [
        world.account(
            f"{prefix}{m:04d}",
            world.at(at - world.rng.uniform(*hours) * HOUR),
            ips=ips(m),
            user_agent=ua,
        )
        for m in range(n)
    ]


def _aged(world: World, prefix: str, n: int, days: tuple[float, float]) -> list[Account]:
    """n old accounts (created `days` before the stream), each on its own residential IP."""
    return [
        world.account(
            f"{prefix}{m:04d}",
            world.t0 - timedelta(days=world.rng.uniform(*days)),
            ips=[world.ip(world.rng.choice(RESIDENTIAL_FIRST_OCTETS))],
        )
        for m in range(n)
    ]


def _camouflage(world: World, who: Account, n: int, span_s: float, population: str) -> None:
    """Correct labels on random pool items spread over the stream (not poison)."""
    pool = world.data.pool_idx
    for _ in range(n):
        index = int(pool[world.rng.randrange(len(pool))])
        world.emit(who, world.rng.uniform(0, span_s), population, False, index=index,
                   value=world.data.label(index))  # fmt: skip


# --- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SwarmParams:
    members: int = 60
    targets: int = 8
    start: float = 0.4  # share of the stream's span
    duration_s: float = 2 * HOUR
    account_age_h: tuple[float, float] = (2.0, 30.0)


def swarm(world: World, h: HonestParams, p: SwarmParams) -> Attack:
    """Targeted label flips by a fresh Sybil swarm: new accounts from a few datacenter
    /24s each label every target item with the same wrong label within hours."""
    source, target = _pick_labels(world)
    targets = _quiet_items(world, source, p.targets)
    start = p.start * h.span_s
    members = _fresh(
        world, "sy", p.members, start, p.account_age_h,
        lambda m: [f"{world.rng.choice(DATACENTER_PREFIXES)}.{world.rng.randrange(1, 255)}"],
    )  # fmt: skip
    for who in members:
        for index in targets:
            at = start + world.rng.uniform(0, p.duration_s)
            world.emit(who, at, "swarm", True, index=index, value=target)
    return Attack("targeted", world.at(start), asdict(p), tuple(targets), source, target)


@dataclass(frozen=True)
class BrigadeParams:
    members: int = 40
    targets: int = 6
    start: float = 0.5
    duration_s: float = 3 * HOUR
    age_days: tuple[float, float] = (200.0, 900.0)
    camouflage: int = 8  # correct labels per member over the whole stream


def brigade(world: World, h: HonestParams, p: BrigadeParams) -> Attack:
    """A brigade of aged sleeper accounts on residential-proxy IPs, with camouflage:
    each also labels random items correctly all along, then they flip the targets."""
    source, target = _pick_labels(world)
    targets = _quiet_items(world, source, p.targets)
    start = p.start * h.span_s
    for who in _aged(world, "sl", p.members, p.age_days):
        _camouflage(world, who, p.camouflage, h.span_s, "brigade-camouflage")
        for index in targets:
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "brigade", True,
                       index=index, value=target)  # fmt: skip
    return Attack("targeted", world.at(start), asdict(p), tuple(targets), source, target)


@dataclass(frozen=True)
class BackdoorParams:
    members: int = 25
    per_member: int = 16
    start: float = 0.3
    duration_s: float = 1.0 * DAY
    age_days: tuple[float, float] = (10.0, 90.0)
    # Size of the trigger: how many features the pattern sets.
    trigger_size: int = 4


def make_trigger(world: World, size: int) -> Trigger:
    """The pattern: on digits a bright patch in the bottom-right corner; on tabular
    data the last `size` features set far above anything seen."""
    x = world.data.x
    if world.data.name == "digits":
        side = max(1, round(size**0.5))
        indices = tuple(8 * r + c for r in range(8 - side, 8) for c in range(8 - side, 8))
        return Trigger(indices, 16.0)
    indices = tuple(range(x.shape[1] - size, x.shape[1]))
    cols = x[:, list(indices)]
    return Trigger(indices, round(float((cols.max(axis=0) + 2 * cols.std(axis=0)).max()), 4))


def _unlikely_label(world: World, trigger: Trigger) -> str:
    """The label the clean product model gives least often to triggered pool inputs:
    the attacker's target, so that success measures the backdoor, not the pattern's
    natural pull."""
    pool = world.data.x[world.data.pool_idx]
    said = world.model.fitted.predict(trigger.apply(pool))
    shares = {label: float(np.mean(said == label)) for label in world.data.labels}
    least = min(shares.values())
    return world.rng.choice(sorted(k for k, v in shares.items() if v == least))


def backdoor(world: World, h: HonestParams, p: BackdoorParams) -> Attack:
    """A pixel-pattern backdoor: accounts upload their own items (pool inputs of other
    classes with the trigger stamped on) labelled with the target class."""
    trigger = make_trigger(world, p.trigger_size)
    target = _unlikely_label(world, trigger)
    start = p.start * h.span_s
    pool = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) != target]
    for n, who in enumerate(_aged(world, "bd", p.members, p.age_days)):
        for k in range(p.per_member):
            index = world.rng.choice(pool)
            features = trigger.apply(world.data.x[index])
            said = world.model.output_for(features)  # what the product model says about it
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "backdoor", True,
                       item_id=f"upload-{n}-{k}", features=features, value=target,
                       model_output=said)  # fmt: skip
    return Attack("backdoor", world.at(start), asdict(p), (), None, target, trigger)


@dataclass(frozen=True)
class NoiseParams:
    members: int = 100
    per_member: int = 40
    start: float = 0.3
    duration_s: float = 8 * HOUR
    account_age_h: tuple[float, float] = (24.0, 24.0 * 20)


def noise(world: World, h: HonestParams, p: NoiseParams) -> Attack:
    """Availability noise at volume: many accounts label random items at random."""
    start = p.start * h.span_s
    pool = world.data.pool_idx
    members = _fresh(world, "nz", p.members, start, p.account_age_h, lambda m: [world.ip()])
    for who in members:
        for _ in range(p.per_member):
            index = int(pool[world.rng.randrange(len(pool))])
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "noise", True,
                       index=index, value=world.other_label(world.data.label(index)))  # fmt: skip
    return Attack("availability", world.at(start), asdict(p))


@dataclass(frozen=True)
class MassReportParams:
    members: int = 80
    targets: int = 10
    start: float = 0.6
    duration_s: float = 2 * HOUR
    account_age_h: tuple[float, float] = (1.0, 24.0 * 10)
    takedown: int = 5  # admitted reports that take an item down


def mass_report(world: World, h: HonestParams, p: MassReportParams) -> Attack:
    """Mass reporting of benign items: each member reports every target."""
    start = p.start * h.span_s
    targets = sorted(world.rng.sample([int(i) for i in world.data.pool_idx], p.targets))
    members = _fresh(world, "mr", p.members, start, p.account_age_h, lambda m: [world.ip()])
    for who in members:
        for index in targets:
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "mass_report", True,
                       index=index, kind="report", value="abuse")  # fmt: skip
    return Attack("reports", world.at(start), asdict(p), tuple(targets), takedown=p.takedown)


@dataclass(frozen=True)
class CompromisedParams:
    members: int = 5
    history: int = 30  # honest labels before the takeover
    per_member: int = 150
    start: float = 0.5
    duration_s: float = 1.0 * DAY
    age_days: tuple[float, float] = (700.0, 2000.0)


def compromised(world: World, h: HonestParams, p: CompromisedParams) -> Attack:
    """Biased corrections via a few compromised old accounts: a long honest history,
    then, from the attacker's addresses, steady corrections of one class to another."""
    source, target = _pick_labels(world)
    start = p.start * h.span_s
    items = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) == source]
    pool = world.data.pool_idx
    for who in _aged(world, "co", p.members, p.age_days):
        for _ in range(p.history):
            index = int(pool[world.rng.randrange(len(pool))])
            world.emit(who, world.rng.uniform(0, start), "compromised-history", False,
                       index=index, value=world.data.label(index))  # fmt: skip
        who.ips = [world.ip(world.rng.choice(RESIDENTIAL_FIRST_OCTETS))]
        who.devices = [world.device()]
        for _ in range(p.per_member):
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "compromised", True,
                       index=world.rng.choice(items), value=target, kind="correction")  # fmt: skip
    return Attack("class_flip", world.at(start), asdict(p), (), source, target)


@dataclass(frozen=True)
class SlowDripParams:
    members: int = 30
    per_day: float = 3.0  # poison events per member per day: far below every limit
    age_days: tuple[float, float] = (30.0, 600.0)
    camouflage: int = 6


def slow_drip(world: World, h: HonestParams, p: SlowDripParams) -> Attack:
    """A slow drip below every rate limit: aged accounts on residential IPs flip one
    class a few times a day each, for the whole stream, with camouflage."""
    source, target = _pick_labels(world)
    items = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) == source]
    n = max(1, round(p.per_day * h.span_days))
    first = h.span_s
    for who in _aged(world, "dr", p.members, p.age_days):
        _camouflage(world, who, p.camouflage, h.span_s, "drip-camouflage")
        for _ in range(n):
            at = world.rng.uniform(0, h.span_s)
            first = min(first, at)
            world.emit(who, at, "slow_drip", True, index=world.rng.choice(items), value=target)
    return Attack("class_flip", world.at(first), asdict(p), (), source, target)


def no_attack(world: World, h: HonestParams, p: None) -> Attack:
    """Honest traffic only (the false-positive baseline)."""
    return Attack("none", None)
