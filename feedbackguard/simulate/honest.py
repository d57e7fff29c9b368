"""The honest population: what feedback looks like when nobody attacks.

Everything that makes naive detectors cry wolf is here on purpose:
* heavy-tailed activity (Pareto weights: a few power users, many one-off users) over
  heavy-tailed item popularity;
* accounts of all ages, including some created days ago;
* label noise (honest people make mistakes);
* shared NAT addresses: one campus IP with ~100 accounts behind it and carrier-grade
  NAT pools that many phones share;
* organic viral bursts: an item goes viral and a crowd, many of them brand-new
  accounts, labels the same few items within an hour;
* a trickle of honest reports, most of them of the few items that really deserve one
  (the world's `bad_items`), some mistaken;
* people make mistakes: a share of labels is wrong, and those events are recorded as
  not correct. An account labels an item once (a power user with hundreds of labels
  moves on to other items, mostly popular ones).
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from feedbackguard.simulate.world import DAY, HOUR, Account, World

HONEST = "honest"


@dataclass(frozen=True)
class HonestParams:
    """Size and shape of the honest population."""

    accounts: int = 1200
    events: int = 8000
    span_days: float = 3.0
    label_noise: float = 0.04
    # Share of accounts younger than a week when the stream starts.
    young_share: float = 0.08
    # Oldest accounts, in days.
    max_age_days: float = 2200.0
    # Pareto shape of per-account activity (smaller = heavier tail).
    activity_shape: float = 1.3
    # Zipf exponent of item popularity.
    popularity_exponent: float = 0.9
    campus_accounts: int = 100
    cgnat_pools: int = 3
    cgnat_ips_per_pool: int = 4
    cgnat_share: float = 0.15
    viral_bursts: int = 2
    viral_accounts: int = 120
    viral_new_share: float = 0.3
    viral_items: int = 3
    viral_duration_s: float = HOUR
    report_rate: float = 0.01
    # Share of honest reports that name an item that really deserves one.
    report_precision: float = 0.8
    # Share of pool items that really deserve a report (abusive content).
    bad_share: float = 0.02

    @property
    def span_s(self) -> float:
        return self.span_days * DAY


CAMPUS_IP = "129.97.10.20"
# Tries to find an item an account has not labelled yet before it labels one again.
REDRAWS = 5


def item_weights(world: World, exponent: float) -> np.ndarray:
    """Popularity of each pool item (Zipf over a seeded random order)."""
    n = len(world.data.pool_idx)
    ranks = np.array(world.rng.sample(range(n), n), dtype=np.float64)
    weights = 1.0 / (ranks + 1.0) ** exponent
    return np.asarray(weights / weights.sum())


def bad_items(world: World, p: HonestParams, rng: random.Random) -> frozenset[int]:
    """The pool items that really deserve a report (drawn with their own generator, so
    they do not shift the rest of the stream)."""
    pool = [int(i) for i in world.data.pool_idx]
    return frozenset(rng.sample(pool, max(1, round(p.bad_share * len(pool)))))


def make_accounts(world: World, p: HonestParams) -> list[Account]:
    rng = world.rng
    pools = [
        [f"100.64.{pool * 16 + k}.{rng.randrange(1, 255)}" for k in range(p.cgnat_ips_per_pool)]
        for pool in range(p.cgnat_pools)
    ]
    accounts: list[Account] = []
    for n in range(p.accounts):
        if rng.random() < p.young_share:
            age_days = rng.uniform(0.5, 7.0)
        else:
            age_days = float(np.exp(rng.uniform(np.log(7.0), np.log(p.max_age_days))))
        ips = [world.ip()]
        if n < p.campus_accounts:
            ips = [CAMPUS_IP]
        elif rng.random() < p.cgnat_share:
            ips = [rng.choice(rng.choice(pools)), ips[0]]
        devices = [world.device() for _ in range(1 + (rng.random() < 0.3))]
        accounts.append(
            world.account(
                f"u{n:05d}", world.t0 - timedelta(days=age_days), ips=ips, devices=devices
            )
        )
    return accounts


def honest_value(world: World, index: int, noise: float) -> str:
    truth = world.data.label(index)
    return world.other_label(truth) if world.rng.random() < noise else truth


def generate(world: World, p: HonestParams) -> list[Account]:
    """Emit the honest stream into `world`; returns the honest accounts."""
    rng = world.rng
    accounts = make_accounts(world, p)
    activity = np.array([rng.paretovariate(p.activity_shape) for _ in accounts])
    activity /= activity.sum()
    popularity = item_weights(world, p.popularity_exponent)
    pool = world.data.pool_idx
    np_rng = np.random.default_rng(rng.getrandbits(32))
    who = np_rng.choice(len(accounts), size=p.events, p=activity)
    what = np_rng.choice(len(pool), size=p.events, p=popularity)
    cumulative = list(itertools.accumulate(popularity.tolist()))
    seen: set[tuple[int, int]] = set()
    bad = sorted(world.bad_items)
    for a, i in zip(who.tolist(), what.tolist(), strict=True):
        account = accounts[a]
        start = max(0.0, (account.created_at - world.t0).total_seconds())
        seconds = rng.uniform(start, p.span_s)
        for _ in range(REDRAWS):
            if (a, i) not in seen:
                break
            i = min(len(pool) - 1, bisect.bisect(cumulative, rng.random() * cumulative[-1]))
        seen.add((a, i))
        index = int(pool[i])
        if rng.random() < p.report_rate:
            if bad and rng.random() < p.report_precision:
                index = rng.choice(bad)
            world.emit(account, seconds, HONEST, False, index=index, kind="report", value="spam")
            continue
        world.emit(
            account,
            seconds,
            HONEST,
            False,
            index=index,
            value=honest_value(world, index, p.label_noise),
        )
    viral(world, p, accounts, popularity)
    world.accounts = accounts
    world.popularity = popularity
    return accounts


def viral(world: World, p: HonestParams, accounts: list[Account], popularity: np.ndarray) -> None:
    """Organic bursts: a crowd (part of it brand-new accounts) on a few items at once."""
    rng = world.rng
    pool = world.data.pool_idx
    for burst in range(p.viral_bursts):
        start = rng.uniform(0.1, 0.85) * p.span_s
        items = [int(pool[i]) for i in rng.sample(range(len(pool)), p.viral_items)]
        for n in range(p.viral_accounts):
            if rng.random() < p.viral_new_share:
                created = world.at(start - rng.uniform(60, 6 * HOUR))
                account = world.account(f"v{burst}-{n:04d}", created, ips=[world.ip()])
                accounts.append(account)
            else:
                account = rng.choice(accounts[: p.accounts])
            for index in rng.sample(items, rng.randint(1, p.viral_items)):
                seconds = start + rng.expovariate(3.0 / p.viral_duration_s)
                world.emit(
                    account, seconds, HONEST, False, index=index,
                    value=honest_value(world, index, p.label_noise),
                )  # fmt: skip
