"""Lockstep (synchronised action) groups."""

from __future__ import annotations

import numpy as np

from feedbackguard.graph.lockstep import detect_lockstep, similar_pairs
from feedbackguard.graph.params import LockstepPolicy
from feedbackguard.graph.window import EventWindow

DAY = 86400.0
HOUR = 3600.0


def _honest(rng: np.random.Generator, n_acc: int = 1000, n_events: int = 20000) -> list[np.ndarray]:
    acc = rng.integers(0, n_acc, n_events)
    itm = rng.integers(0, 2000, n_events)
    val = rng.integers(0, 3, n_events)
    t = rng.uniform(0, 30 * DAY, n_events)
    return [acc, itm, val, t]


def _window(parts: list[list[np.ndarray]], n_acc: int) -> EventWindow:
    cols = [np.concatenate([p[k] for p in parts]) for k in range(4)]
    return EventWindow.from_arrays(cols[0], cols[1], cols[3], value=cols[2], n_accounts=n_acc)


def _group(rng: np.random.Generator, first: int, size: int, n_items: int) -> list[np.ndarray]:
    members = np.arange(first, first + size)
    items = rng.choice(2000, n_items, replace=False)
    acc = np.repeat(members, n_items)
    itm = np.tile(items, size)
    start = 5 * DAY
    return [acc, itm, np.ones(acc.size, dtype=int), start + rng.uniform(0, 2 * HOUR, acc.size)]


def _flagged(w: EventWindow) -> list[set[int]]:
    groups, _ = detect_lockstep(w, LockstepPolicy(), np.zeros(w.n_accounts, dtype=bool))
    return [set(g.members.tolist()) for g in groups if g.flagged]


def test_planted_lockstep_group_is_found_exactly() -> None:
    rng = np.random.default_rng(1)
    w = _window([_honest(rng), _group(rng, 1000, 30, 12)], 1030)
    assert _flagged(w) == [set(range(1000, 1030))]


def test_camouflaged_group_is_still_found() -> None:
    rng = np.random.default_rng(2)
    group = _group(rng, 1000, 30, 12)
    n = group[0].size
    camo = [
        rng.integers(1000, 1030, n),
        rng.integers(0, 2000, n),
        rng.integers(0, 3, n),
        rng.uniform(0, 30 * DAY, n),
    ]
    w = _window([_honest(rng), group, camo], 1030)
    assert _flagged(w) == [set(range(1000, 1030))]


def test_organic_viral_burst_is_not_flagged() -> None:
    rng = np.random.default_rng(3)
    viral = rng.choice(1000, 300, replace=False)
    burst = [viral, np.full(300, 7), np.ones(300, dtype=int), 3 * DAY + rng.uniform(0, HOUR, 300)]
    w = _window([_honest(rng), burst], 1000)
    assert _flagged(w) == []


def test_matching_requires_the_same_value() -> None:
    rng = np.random.default_rng(4)
    group = _group(rng, 0, 10, 12)
    group[2] = group[0]  # every member gives its own value
    w = _window([group], 10)
    assert similar_pairs(w, LockstepPolicy()).a.size == 0


def test_actions_further_apart_than_t_sim_do_not_match() -> None:
    rng = np.random.default_rng(5)
    group = _group(rng, 0, 10, 12)
    group[3] = np.arange(group[0].size) * 4 * HOUR  # one action every 4 hours
    w = _window([group], 10)
    assert similar_pairs(w, LockstepPolicy(t_sim_s=3 * HOUR)).a.size == 0


def test_heavy_users_repeating_popular_items_are_not_paired() -> None:
    # 40 heavy users, each acting 20 times on each of 15 popular items over 30 days
    # (same values: they agree, as honest labellers do): they meet by chance everywhere.
    rng = np.random.default_rng(6)
    acc = np.repeat(np.arange(40), 15 * 20)
    itm = np.tile(np.repeat(np.arange(15), 20), 40)
    t = rng.uniform(0, 30 * DAY, acc.size)
    w = _window([[acc, itm, np.ones(acc.size, dtype=int), t]], 40)
    assert similar_pairs(w, LockstepPolicy(min_chance_ratio=0)).a.size > 0
    assert similar_pairs(w, LockstepPolicy()).a.size == 0


def test_a_crowd_in_step_on_fewer_items_than_min_group_items_is_not_flagged() -> None:
    rng = np.random.default_rng(7)
    crowd = _group(rng, 1000, 30, 3)  # a viral item and two neighbours, within 2 h
    w = _window([_honest(rng), crowd], 1030)
    assert _flagged(w) == []
    groups, _ = detect_lockstep(w, LockstepPolicy(min_group_items=3), np.zeros(1030, dtype=bool))
    assert [set(g.members.tolist()) for g in groups if g.flagged] == [set(range(1000, 1030))]


def test_group_events_are_its_synchronised_actions_only() -> None:
    rng = np.random.default_rng(8)
    group = _group(rng, 1000, 30, 12)
    members = np.arange(1000, 1030)
    # Each member again on one target, days later, 7 h after the one before: in step
    # with nobody.
    later = [members, group[1][:30], np.ones(30, dtype=int), 10 * DAY + members % 1000 * 7 * HOUR]
    w = _window([_honest(rng), group, later], 1030)
    groups, _ = detect_lockstep(w, LockstepPolicy(), np.zeros(1030, dtype=bool))
    (found,) = [g for g in groups if g.flagged]
    assert found.events.size == group[0].size
    assert float(w.time[found.events].max()) < 6 * DAY


def test_a_swarm_in_a_window_of_minutes_is_still_flagged() -> None:
    # A new namespace (or the demo): the whole window is shorter than t_sim.
    rng = np.random.default_rng(9)
    members = np.repeat(np.arange(20), 6)
    items = np.tile(np.arange(6), 20)
    swarm = [members, items, np.ones(members.size, dtype=int), rng.uniform(0, 60, members.size)]
    honest = [rng.integers(20, 200, 300), rng.integers(0, 50, 300), rng.integers(0, 3, 300),
              rng.uniform(0, 60, 300)]  # fmt: skip
    w = _window([swarm, honest], 200)
    assert set(range(20)) in _flagged(w)
