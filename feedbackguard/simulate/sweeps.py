"""Sweeps: each attack family over the range of its parameters, to find its worst case.

A family's `Factor`s name the parameters that change what a detector sees (members,
targets, the share of them each member hits, account age, IP spread, one browser build
or many, speed, camouflage) and the range each takes. The points of a sweep are:

* `default`: the family's default parameters (the per-scenario figures);
* `corner-0` .. `corner-7`: the corners of the parameter box given by a two-level
  orthogonal array OA(8, 7, 2, 2): the full 2^3 design on factors A, B, C with the
  columns A, B, A^B, C, A^C, B^C, A^B^C. Every factor is at its low extreme in four
  corners and at its high extreme in the other four, and every pair of factors meets
  in all four combinations of extremes (twice each), in 8 runs instead of 2^7 = 128;
  corner-0 is the all-low corner;
* `case: ...`: concrete small and partial attacks that pass a minimum group size (`CASES`);
* `random-1` .. `random-N`: interior points drawn uniformly (log-uniformly for
  factors spanning orders of magnitude, a random level for levelled factors), seeded
  by family and seed, so an interior weakness no corner shows can still turn up.

`--quick` keeps `default`, the all-low corner and the all-high corner. Point k of a
family runs on the honest population of seed `seed + k` (each point its own honest
sample), so the worst case is also a worst case over honest samples.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from feedbackguard.simulate import SCENARIOS
from feedbackguard.simulate.attacks import AGE_H, SPREADS
from feedbackguard.simulate.world import DAY, HOUR

Design = Literal["default", "corner", "case", "random"]
# Random interior points per family unless told otherwise.
RANDOM_POINTS = 2
# The columns of OA(8, 7, 2, 2) as XORs of the base factors A, B, C (bits of the row).
OA_COLUMNS = (0b001, 0b010, 0b011, 0b100, 0b101, 0b110, 0b111)


@dataclass(frozen=True)
class Factor:
    """One swept parameter: a numeric range [low, high] or ordered levels."""

    name: str
    low: Any = None
    high: Any = None
    levels: tuple[Any, ...] = ()
    log: bool = False
    integer: bool = False

    @property
    def extremes(self) -> tuple[Any, Any]:
        return (self.levels[0], self.levels[-1]) if self.levels else (self.low, self.high)

    def draw(self, rng: random.Random) -> Any:
        """A value inside the range (a random level for levelled factors)."""
        if self.levels:
            return rng.choice(self.levels)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.integer else round(value, 3)


def _members(low: int, high: int) -> Factor:
    return Factor("members", low, high, log=True, integer=True)


def _age(*bands: str) -> Factor:
    return Factor("age_h", levels=tuple(AGE_H[b] for b in bands))


TARGETS = Factor("targets", 1, 10, integer=True)
SHARE = Factor("share", 0.3, 1.0)
IPS = Factor("ips", levels=SPREADS)
BURST = Factor("duration_s", 10 * 60.0, 2 * DAY, log=True)
AGES = _age("hours", "days", "weeks_idle", "months")

FACTORS: dict[str, tuple[Factor, ...]] = {
    "mass_report": (_members(5, 200), TARGETS, SHARE, AGES, IPS, BURST,
                    Factor("one_browser", levels=(True, False))),
    "swarm": (_members(5, 200), TARGETS, SHARE, AGES, IPS, BURST,
              Factor("camouflage", 0.0, 2.0)),
    "brigade": (_members(5, 200), TARGETS, SHARE, _age("days", "weeks_idle", "months"), IPS,
                BURST, Factor("camouflage", 0.0, 3.0)),
    "backdoor": (_members(3, 60), Factor("per_member", 4, 40, log=True, integer=True),
                 Factor("duration_s", HOUR, 2 * DAY, log=True), AGES, IPS,
                 Factor("camouflage", 0.0, 2.0), Factor("trigger_size", 1, 9, integer=True)),
    "noise": (_members(10, 150), Factor("per_member", 5, 40, log=True, integer=True),
              Factor("duration_s", HOUR, 2 * DAY, log=True), AGES, IPS,
              Factor("camouflage", 0.0, 2.0)),
    "compromised": (_members(1, 20), Factor("history", 5, 100, log=True, integer=True),
                    Factor("per_member", 20, 300, log=True, integer=True),
                    Factor("duration_s", 2 * HOUR, 2 * DAY, log=True),
                    Factor("takeover", levels=("own", "residential", "few_24")),
                    Factor("camouflage", 0.0, 2.0)),
    "slow_drip": (_members(5, 100), Factor("per_day", 1.0, 10.0, log=True),
                  _age("days", "weeks_idle", "months"), IPS, Factor("camouflage", 0.0, 3.0)),
}  # fmt: skip

FRESH = AGE_H["hours"]
WEEKS_IDLE = AGE_H["weeks_idle"]
# Concrete attacks that stay under a detector's minimum group size or density, each a
# point of its family's sweep.
CASES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "mass_report": (
        ("40 fresh on one /24, 2 posts", dict(members=40, targets=2, share=1.0, age_h=FRESH,
                                              ips="one_24", duration_s=HOUR)),
        ("20 fresh on own /24s, 4 posts", dict(members=20, targets=4, share=1.0, age_h=FRESH,
                                               ips="residential", duration_s=HOUR)),
        ("partial, weeks-old idle", dict(members=60, targets=8, share=0.5, age_h=WEEKS_IDLE,
                                         ips="residential", one_browser=False,
                                         duration_s=3 * HOUR)),
    ),
    "brigade": (
        ("partial, weeks-old idle", dict(members=30, targets=6, share=0.5, age_h=WEEKS_IDLE,
                                         camouflage=0.0, ips="residential",
                                         duration_s=3 * HOUR)),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Point:
    """One run of a sweep: the family's parameters and the seed of its streams."""

    family: str
    name: str
    design: Design
    params: Any
    seed: int

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"


def corners(factors: tuple[Factor, ...]) -> list[dict[str, Any]]:
    """The 8 corners of OA(8, 7, 2, 2) on up to 7 factors (row 0: every factor low)."""
    if len(factors) > len(OA_COLUMNS):
        raise ValueError(f"at most {len(OA_COLUMNS)} factors, got {len(factors)}")
    rows = []
    for row in range(8):
        rows.append({
            f.name: f.extremes[bin(row & column).count("1") % 2]
            for f, column in zip(factors, OA_COLUMNS, strict=False)
        })  # fmt: skip
    return rows


def points(
    family: str, seed: int = 0, *, random_points: int = RANDOM_POINTS, quick: bool = False
) -> list[Point]:
    """The sweep of `family`, deterministic for a seed (see the module's docstring)."""
    if family not in FACTORS:
        raise KeyError(f"unknown family {family!r}; choose from {', '.join(FACTORS)}")
    base = SCENARIOS[family].params
    factors = FACTORS[family]
    chosen: list[tuple[str, Design, dict[str, Any]]] = [("default", "default", {})]
    if quick:
        chosen.append(("corner-low", "corner", {f.name: f.extremes[0] for f in factors}))
        chosen.append(("corner-high", "corner", {f.name: f.extremes[1] for f in factors}))
    else:
        chosen += [(f"corner-{n}", "corner", c) for n, c in enumerate(corners(factors))]
        chosen += [(f"case: {name}", "case", values) for name, values in CASES.get(family, ())]
        for n in range(1, random_points + 1):
            rng = random.Random(f"sweep:{family}:{seed}:{n}")
            chosen.append((f"random-{n}", "random", {f.name: f.draw(rng) for f in factors}))
    names = {f.name for f in fields(base)}
    out = []
    for k, (name, design, values) in enumerate(chosen):
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{family}: no parameters {sorted(unknown)}")
        out.append(Point(family, name, design, replace(base, **values), seed + k))
    return out
