"""Honest crowd traps: honest people who act together in ways detectors mistake for an
attack. Each trap is its own stream (the honest population plus the crowd, no attack)
and is scored on the crowd's own events (`Truth.crowd`), so a detector that rejects
them wholesale shows up here and nowhere else.

* `classroom`: a class (or an office) on one IP and one browser build, accounts made
  the same morning, labelling the same assignment items within an hour;
* `signup_wave`: hundreds of accounts created within one hour (a campaign, a news
  mention), each labelling a few popular items in the hours after;
* `campus_nat`: a campus behind one public address, many accounts new at the start of
  term, ordinary activity all along;
* `carrier_nat`: carrier-grade NAT, hundreds of phones behind a few addresses of one
  /24, ordinary activity all along;
* `viral_reports`: an item that really deserves a report goes viral: many independent
  people (most with history, some brand-new) report it within an hour;
* `power_users`: the honest population with a heavier activity tail over weeks (a
  handful of accounts with hundreds of labels, mostly on popular items); the crowd is
  the top 1 % of honest accounts by activity, found when scoring.

Crowds make honest mistakes (`noise`: a wrong label, a report of the wrong item); those
events are honest but not correct.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

import numpy as np

from feedbackguard.simulate.attacks import RESIDENTIAL_FIRST_OCTETS, Attack
from feedbackguard.simulate.honest import HONEST, HonestParams, honest_value
from feedbackguard.simulate.world import HOUR, USER_AGENTS, Account, World

MOBILE_AGENTS = tuple(ua for ua in USER_AGENTS if "Mobile" in ua)


def _popular(world: World, n: int, rng: random.Random) -> list[int]:
    """n distinct pool items drawn by the honest population's item popularity."""
    pool = world.data.pool_idx
    np_rng = np.random.default_rng(rng.getrandbits(32))
    chosen = np_rng.choice(len(pool), size=min(n, len(pool)), replace=False,
                           p=world.popularity)  # fmt: skip
    return [int(pool[i]) for i in chosen.tolist()]


def _label(world: World, who: Account, at: float, index: int, noise: float, crowd: str) -> None:
    world.emit(who, at, HONEST, False, index=index, value=honest_value(world, index, noise),
               crowd=crowd)  # fmt: skip


def _ordinary(world: World, accounts: list[Account], events: int, h: HonestParams,
              noise: float, crowd: str) -> None:  # fmt: skip
    """`events` labels from `accounts` over the stream: heavy-tailed activity, popular
    items, each account labelling an item at most once, never before it exists."""
    rng = world.rng
    activity = np.array([rng.paretovariate(h.activity_shape) for _ in accounts])
    np_rng = np.random.default_rng(rng.getrandbits(32))
    who = np_rng.choice(len(accounts), size=events, p=activity / activity.sum())
    pool = world.data.pool_idx
    what = np_rng.choice(len(pool), size=events, p=world.popularity)
    done: set[tuple[int, int]] = set()
    for a, i in zip(who.tolist(), what.tolist(), strict=True):
        index = int(pool[i])
        if (a, index) in done:
            continue
        done.add((a, index))
        account = accounts[a]
        born = max(0.0, (account.created_at - world.t0).total_seconds())
        _label(world, account, rng.uniform(born, h.span_s), index, noise, crowd)


@dataclass(frozen=True)
class ClassroomParams:
    groups: int = 2  # classes (or offices), each in its own session on its own day
    members: int = 30
    items: int = 20  # the assignment: every member labels every item
    duration_s: float = HOUR
    created_h: tuple[float, float] = (1.0, 4.0)  # accounts made that morning
    noise: float = 0.05


def classroom(world: World, h: HonestParams, p: ClassroomParams) -> Attack:
    """Classes on one IP and one browser build, accounts made the same morning,
    labelling the same assignment items within an hour."""
    rng = world.rng
    for g in range(p.groups):
        session = (g + 0.5) / p.groups * max(0.0, h.span_s - p.duration_s)
        ip = world.ip(rng.choice(RESIDENTIAL_FIRST_OCTETS))
        agent = rng.choice(USER_AGENTS)
        items = _popular(world, p.items, rng)
        for m in range(p.members):
            created = world.at(session - rng.uniform(*p.created_h) * HOUR)
            pupil = world.account(f"cl{g}-{m:03d}", created, ips=[ip], user_agent=agent)
            for index in rng.sample(items, len(items)):
                _label(world, pupil, session + rng.uniform(0, p.duration_s), index, p.noise,
                       "classroom")  # fmt: skip
    return Attack("none", None, asdict(p))


@dataclass(frozen=True)
class SignupWaveParams:
    accounts: int = 300
    window_s: float = HOUR  # every account is created within it
    at: float = 0.4  # share of the span
    labels: tuple[int, int] = (1, 6)  # per account
    active_s: float = 6 * HOUR  # they label within this time of signing up
    noise: float = 0.06


def signup_wave(world: World, h: HonestParams, p: SignupWaveParams) -> Attack:
    """Hundreds of new accounts within one hour, each on its own address and browser,
    each labelling a few popular items in the hours after."""
    rng = world.rng
    start = p.at * max(0.0, h.span_s - p.window_s - p.active_s)
    items = _popular(world, 60, rng)
    for n in range(p.accounts):
        born = start + rng.uniform(0, p.window_s)
        ip = world.ip(rng.choice(RESIDENTIAL_FIRST_OCTETS))
        who = world.account(f"sw-{n:04d}", world.at(born), ips=[ip])
        for index in rng.sample(items, rng.randint(*p.labels)):
            _label(world, who, born + rng.uniform(60, p.active_s), index, p.noise, "signup_wave")
    return Attack("none", None, asdict(p))


@dataclass(frozen=True)
class CampusParams:
    accounts: int = 150
    ip: str = "128.32.40.9"
    young_share: float = 0.4  # created in the week before: the start of term
    events: int = 1500
    noise: float = 0.04


def campus_nat(world: World, h: HonestParams, p: CampusParams) -> Attack:
    """A campus behind one public address: many accounts new at the start of term."""
    rng = world.rng
    accounts = []
    for n in range(p.accounts):
        days = rng.uniform(0.2, 7.0) if rng.random() < p.young_share else rng.uniform(7, 1500)
        accounts.append(world.account(f"cp-{n:04d}", world.t0 - timedelta(days=days),
                                      ips=[p.ip]))  # fmt: skip
    _ordinary(world, accounts, p.events, h, p.noise, "campus_nat")
    return Attack("none", None, asdict(p))


@dataclass(frozen=True)
class CarrierNatParams:
    accounts: int = 400
    prefix: str = "172.58.12"  # the carrier's public pool: a few addresses of one /24
    addresses: int = 4
    young_share: float = 0.1
    events: int = 1500
    noise: float = 0.04


def carrier_nat(world: World, h: HonestParams, p: CarrierNatParams) -> Attack:
    """Carrier-grade NAT: hundreds of phones behind a few addresses of one /24."""
    rng = world.rng
    pool = [f"{p.prefix}.{rng.randrange(1, 255)}" for _ in range(p.addresses)]
    accounts = []
    for n in range(p.accounts):
        days = rng.uniform(0.2, 7.0) if rng.random() < p.young_share else rng.uniform(7, 1500)
        accounts.append(world.account(f"cg-{n:04d}", world.t0 - timedelta(days=days),
                                      ips=rng.sample(pool, 2),
                                      user_agent=rng.choice(MOBILE_AGENTS)))  # fmt: skip
    _ordinary(world, accounts, p.events, h, p.noise, "carrier_nat")
    return Attack("none", None, asdict(p))


@dataclass(frozen=True)
class ViralReportsParams:
    reporters: int = 150
    items: int = 2  # items that really deserve a report, going viral together
    new_share: float = 0.3  # reporters whose account is hours old
    at: float = 0.5
    duration_s: float = HOUR
    noise: float = 0.05  # reporters who report a benign item seen beside it


def viral_reports(world: World, h: HonestParams, p: ViralReportsParams) -> Attack:
    """Many independent people report items that really deserve it within an hour."""
    rng = world.rng
    start = p.at * max(0.0, h.span_s - p.duration_s)
    bad = rng.sample(sorted(world.bad_items), min(p.items, len(world.bad_items)))
    benign = [int(i) for i in world.data.pool_idx if int(i) not in world.bad_items]
    veterans = [a for a in world.accounts if a.created_at <= world.at(start)]
    old = rng.sample(veterans, min(len(veterans), round(p.reporters * (1 - p.new_share))))
    new = [
        world.account(
            f"vr-{n:04d}",
            world.at(start - rng.uniform(0.1, 6) * HOUR),
            ips=[world.ip(rng.choice(RESIDENTIAL_FIRST_OCTETS))],
        )
        for n in range(p.reporters - len(old))
    ]
    for who in old + new:
        for index in rng.sample(bad, rng.randint(1, len(bad))):
            if rng.random() < p.noise:
                index = rng.choice(benign)
            at = start + rng.expovariate(3.0 / p.duration_s)
            world.emit(who, at, HONEST, False, index=index, kind="report", value="abuse",
                       crowd="viral_reports")  # fmt: skip
    return Attack("none", None, asdict(p))


@dataclass(frozen=True)
class PowerUsersParams:
    activity_shape: float = 1.1  # Pareto shape of activity: the heavier tail
    span_factor: float = 4.0  # the stream runs this many times the population's span
    events_factor: float = 2.0  # with this many times its events


def power_population(h: HonestParams, p: PowerUsersParams) -> HonestParams:
    """The honest population stretched over weeks with a heavier activity tail."""
    return replace(h, activity_shape=p.activity_shape, span_days=h.span_days * p.span_factor,
                   events=round(h.events * p.events_factor))  # fmt: skip


def power_users(world: World, h: HonestParams, p: PowerUsersParams) -> Attack:
    """Honest traffic only, over weeks, with a heavy tail of power users."""
    return Attack("none", None, asdict(p))
