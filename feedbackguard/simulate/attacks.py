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

Every family takes the dimensions the sweeps (`feedbackguard.simulate.sweeps`) vary:
how many members, how old their accounts are when the attack starts (`age_h`, hours;
accounts with no camouflage are idle until the attack, so an age of weeks is an
aged-but-idle account), where they connect from (`ips`: all in one /24, a few /24s, or
each on its own residential address), one browser build for all or each its own, how
fast (`duration_s`, or `per_day` for the slow drip) and how much camouflage (correct
labels per poison event, spread over the account's life in the stream). A burst starts
at `start` of the part of the stream it fits in (`start * (span - duration)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from feedbackguard.simulate.data import FloatArray
from feedbackguard.simulate.honest import HonestParams
from feedbackguard.simulate.world import DAY, HOUR, TAKEDOWN_REPORTS, USER_AGENTS, Account, World

Goal = Literal["targeted", "class_flip", "backdoor", "availability", "reports", "none"]
# Residential-proxy exits: addresses scattered over consumer ISP ranges, one per account.
RESIDENTIAL_FIRST_OCTETS = (24, 50, 66, 68, 71, 73, 75, 76, 96, 98, 99, 107, 174)
# Datacenter ranges a cheap swarm comes from (a few /24s).
DATACENTER_PREFIXES = ("185.220.101", "45.134.26", "193.32.162")
# What a scripted client sends when all members run one build.
SCRIPT_AGENTS = ("python-requests/2.32", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120")
# Where members connect from: one datacenter /24, a few of them, or each member on its
# own residential address (residential proxies: a different /24 per member).
Spread = Literal["one_24", "few_24", "residential"]
SPREADS: tuple[Spread, ...] = ("one_24", "few_24", "residential")
# Account age bands, hours before the attack starts (the sweeps' levels).
AGE_H: dict[str, tuple[float, float]] = {
    "hours": (1.0, 12.0),
    "days": (24.0, 7 * 24.0),
    "weeks_idle": (14 * 24.0, 42 * 24.0),
    "months": (60 * 24.0, 365 * 24.0),
}


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


def _start(share: float, duration_s: float, h: HonestParams) -> float:
    """Event time a burst of `duration_s` starts: `share` of the room the stream leaves."""
    return share * max(0.0, h.span_s - duration_s)


def member_ips(world: World, spread: Spread, n: int) -> list[str]:
    """One address per member, spread as asked (residential: each in its own /24)."""
    if spread == "residential":
        out: dict[str, str] = {}
        while len(out) < n:
            ip = world.ip(world.rng.choice(RESIDENTIAL_FIRST_OCTETS))
            out.setdefault(ip.rsplit(".", 1)[0], ip)
        return list(out.values())
    prefixes = [world.rng.choice(DATACENTER_PREFIXES)] if spread == "one_24" else \
        list(DATACENTER_PREFIXES)  # fmt: skip
    return [f"{world.rng.choice(prefixes)}.{world.rng.randrange(1, 255)}" for _ in range(n)]


def members(world: World, prefix: str, n: int, at: float, age_h: tuple[float, float],
            ips: Spread, one_browser: bool) -> list[Account]:  # fmt: skip
    """n accounts created `age_h` hours before event time `at`, connecting as asked."""
    agent = world.rng.choice(SCRIPT_AGENTS) if one_browser else None
    addresses = member_ips(world, ips, n)
    return [
        world.account(
            f"{prefix}{m:04d}",
            world.at(at - world.rng.uniform(*age_h) * HOUR),
            ips=[addresses[m]],
            user_agent=agent or world.rng.choice(USER_AGENTS),
        )
        for m in range(n)
    ]


def _camouflage(world: World, who: Account, n: int, h: HonestParams, population: str) -> None:
    """n correct labels on random pool items, spread over the account's life in the
    stream (not poison)."""
    pool = world.data.pool_idx
    born = max(0.0, (who.created_at - world.t0).total_seconds())
    for _ in range(n):
        index = int(pool[world.rng.randrange(len(pool))])
        world.emit(who, world.rng.uniform(born, h.span_s), population, False, index=index,
                   value=world.data.label(index))  # fmt: skip


def _some(world: World, targets: list[int], share: float) -> list[int]:
    """The part of the targets one member acts on (at least one)."""
    return world.rng.sample(targets, max(1, round(share * len(targets))))


# --- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SwarmParams:
    members: int = 60
    targets: int = 8
    share: float = 1.0  # of the targets each member labels
    start: float = 0.4
    duration_s: float = 2 * HOUR
    age_h: tuple[float, float] = (2.0, 30.0)
    ips: Spread = "few_24"
    one_browser: bool = True
    camouflage: float = 0.0  # correct labels per poison event


def swarm(world: World, h: HonestParams, p: SwarmParams) -> Attack:
    """Targeted label flips by a fresh Sybil swarm: new accounts from a few datacenter
    /24s each label every target item with the same wrong label within hours."""
    source, target = _pick_labels(world)
    targets = _quiet_items(world, source, p.targets)
    start = _start(p.start, p.duration_s, h)
    for who in members(world, "sy", p.members, start, p.age_h, p.ips, p.one_browser):
        mine = _some(world, targets, p.share)
        _camouflage(world, who, round(p.camouflage * len(mine)), h, "swarm-camouflage")
        for index in mine:
            at = start + world.rng.uniform(0, p.duration_s)
            world.emit(who, at, "swarm", True, index=index, value=target)
    return Attack("targeted", world.at(start), asdict(p), tuple(targets), source, target)


@dataclass(frozen=True)
class BrigadeParams:
    members: int = 40
    targets: int = 6
    share: float = 1.0
    start: float = 0.5
    duration_s: float = 3 * HOUR
    age_h: tuple[float, float] = (200 * 24.0, 900 * 24.0)
    ips: Spread = "residential"
    one_browser: bool = False
    camouflage: float = 8 / 6


def brigade(world: World, h: HonestParams, p: BrigadeParams) -> Attack:
    """A brigade of aged sleeper accounts on residential-proxy IPs, with camouflage:
    each also labels random items correctly all along, then they flip the targets."""
    source, target = _pick_labels(world)
    targets = _quiet_items(world, source, p.targets)
    start = _start(p.start, p.duration_s, h)
    for who in members(world, "sl", p.members, start, p.age_h, p.ips, p.one_browser):
        mine = _some(world, targets, p.share)
        _camouflage(world, who, round(p.camouflage * len(mine)), h, "brigade-camouflage")
        for index in mine:
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "brigade", True,
                       index=index, value=target)  # fmt: skip
    return Attack("targeted", world.at(start), asdict(p), tuple(targets), source, target)


@dataclass(frozen=True)
class BackdoorParams:
    members: int = 25
    per_member: int = 16
    start: float = 0.3
    duration_s: float = 1.0 * DAY
    age_h: tuple[float, float] = (10 * 24.0, 90 * 24.0)
    ips: Spread = "residential"
    one_browser: bool = False
    camouflage: float = 0.0
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
    start = _start(p.start, p.duration_s, h)
    pool = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) != target]
    accounts = members(world, "bd", p.members, start, p.age_h, p.ips, p.one_browser)
    for n, who in enumerate(accounts):
        _camouflage(world, who, round(p.camouflage * p.per_member), h, "backdoor-camouflage")
        rows = [world.rng.choice(pool) for _ in range(p.per_member)]
        uploads = trigger.apply(world.data.x[rows])
        said = world.model.outputs_for(uploads)  # what the product model says about them
        for k, (features, output) in enumerate(zip(uploads, said, strict=True)):
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "backdoor", True,
                       item_id=f"upload-{n}-{k}", features=features, value=target,
                       model_output=output, correct=False)  # fmt: skip
    return Attack("backdoor", world.at(start), asdict(p), (), None, target, trigger)


@dataclass(frozen=True)
class NoiseParams:
    members: int = 100
    per_member: int = 40
    start: float = 0.3
    duration_s: float = 8 * HOUR
    age_h: tuple[float, float] = (24.0, 24.0 * 20)
    ips: Spread = "residential"
    one_browser: bool = True
    camouflage: float = 0.0


def noise(world: World, h: HonestParams, p: NoiseParams) -> Attack:
    """Availability noise at volume: many accounts label random items at random."""
    start = _start(p.start, p.duration_s, h)
    pool = world.data.pool_idx
    for who in members(world, "nz", p.members, start, p.age_h, p.ips, p.one_browser):
        _camouflage(world, who, round(p.camouflage * p.per_member), h, "noise-camouflage")
        for _ in range(p.per_member):
            index = int(pool[world.rng.randrange(len(pool))])
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "noise", True,
                       index=index, value=world.other_label(world.data.label(index)))  # fmt: skip
    return Attack("availability", world.at(start), asdict(p))


@dataclass(frozen=True)
class MassReportParams:
    members: int = 80
    targets: int = 10
    share: float = 1.0  # of the targets each member reports
    start: float = 0.6
    duration_s: float = 2 * HOUR
    age_h: tuple[float, float] = (1.0, 24.0 * 10)
    ips: Spread = "residential"
    one_browser: bool = True
    takedown: int = TAKEDOWN_REPORTS  # admitted reports that take an item down


def mass_report(world: World, h: HonestParams, p: MassReportParams) -> Attack:
    """Mass reporting of benign items: each member reports its share of the targets."""
    start = _start(p.start, p.duration_s, h)
    benign = [int(i) for i in world.data.pool_idx if int(i) not in world.bad_items]
    targets = sorted(world.rng.sample(benign, p.targets))
    for who in members(world, "mr", p.members, start, p.age_h, p.ips, p.one_browser):
        for index in _some(world, targets, p.share):
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "mass_report", True,
                       index=index, kind="report", value="abuse")  # fmt: skip
    return Attack("reports", world.at(start), asdict(p), tuple(targets), takedown=p.takedown)


Takeover = Literal["own", "residential", "few_24"]


@dataclass(frozen=True)
class CompromisedParams:
    members: int = 5
    history: int = 30  # honest labels before the takeover
    per_member: int = 150
    start: float = 0.5
    duration_s: float = 1.0 * DAY
    age_h: tuple[float, float] = (700 * 24.0, 2000 * 24.0)
    # Where the attacker acts from: the owner's own address and device (malware, a
    # stolen session), residential proxies, or a few datacenter /24s.
    takeover: Takeover = "residential"
    # The owner keeps using the account during the attack: correct labels per poison
    # event, from the owner's address and device.
    camouflage: float = 0.0


def compromised(world: World, h: HonestParams, p: CompromisedParams) -> Attack:
    """Biased corrections via a few compromised old accounts: a long honest history,
    then, from the attacker's addresses, steady corrections of one class to another."""
    source, target = _pick_labels(world)
    start = _start(p.start, p.duration_s, h)
    items = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) == source]
    pool = world.data.pool_idx
    owners = members(world, "co", p.members, start, p.age_h, "residential", False)
    spread: Spread = "residential" if p.takeover == "own" else p.takeover
    attacker_ips = member_ips(world, spread, p.members)
    for who, attacker_ip in zip(owners, attacker_ips, strict=True):
        born = max(0.0, (who.created_at - world.t0).total_seconds())
        for _ in range(p.history):
            index = int(pool[world.rng.randrange(len(pool))])
            world.emit(who, world.rng.uniform(born, start), "compromised-history", False,
                       index=index, value=world.data.label(index))  # fmt: skip
        for _ in range(round(p.camouflage * p.per_member)):
            index = int(pool[world.rng.randrange(len(pool))])
            world.emit(who, start + world.rng.uniform(0, p.duration_s), "compromised-history",
                       False, index=index, value=world.data.label(index))  # fmt: skip
        attacker = who
        if p.takeover != "own":
            attacker = Account(who.account_id, who.created_at, [attacker_ip], [world.device()],
                               world.rng.choice(USER_AGENTS))  # fmt: skip
        for _ in range(p.per_member):
            world.emit(attacker, start + world.rng.uniform(0, p.duration_s), "compromised",
                       True, index=world.rng.choice(items), value=target,
                       kind="correction")  # fmt: skip
    return Attack("class_flip", world.at(start), asdict(p), (), source, target)


@dataclass(frozen=True)
class SlowDripParams:
    members: int = 30
    per_day: float = 3.0  # poison events per member per day: far below every limit
    age_h: tuple[float, float] = (30 * 24.0, 600 * 24.0)
    ips: Spread = "residential"
    one_browser: bool = False
    camouflage: float = 6 / 9


def slow_drip(world: World, h: HonestParams, p: SlowDripParams) -> Attack:
    """A slow drip below every rate limit: aged accounts on residential IPs flip one
    class a few times a day each, for the whole stream, with camouflage."""
    source, target = _pick_labels(world)
    items = [int(i) for i in world.data.pool_idx if world.data.label(int(i)) == source]
    n = max(1, round(p.per_day * h.span_days))
    first = h.span_s
    for who in members(world, "dr", p.members, 0.0, p.age_h, p.ips, p.one_browser):
        _camouflage(world, who, round(p.camouflage * n), h, "drip-camouflage")
        for _ in range(n):
            at = world.rng.uniform(0, h.span_s)
            first = min(first, at)
            world.emit(who, at, "slow_drip", True, index=world.rng.choice(items), value=target)
    return Attack("class_flip", world.at(first), asdict(p), (), source, target)


def no_attack(world: World, h: HonestParams, p: None) -> Attack:
    """Honest traffic only (the false-positive baseline)."""
    return Attack("none", None)
