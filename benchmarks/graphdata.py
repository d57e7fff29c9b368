"""Synthetic data for the graph-detection benchmarks (fixed seeds, no downloads).

Honest traffic is a Chung-Lu style power-law bipartite graph (a few heavy users and
popular items, many light ones) spread uniformly over 30 days; attacks are injected
on top with known members, so precision and recall are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DAY = 86400.0
HOUR = 3600.0
T0 = 1_700_000_000.0  # an arbitrary epoch origin, so times look like real ones

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def powerlaw_weights(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    """Pareto-distributed activity weights (heavier tail for smaller exponent)."""
    w = rng.pareto(exponent, n) + 1.0
    return np.asarray(w / w.sum())


def powerlaw_edges(
    rng: np.random.Generator, n_rows: int, n_cols: int, n_edges: int
) -> tuple[IntArray, IntArray]:
    """Distinct (row, col) pairs drawn with power-law row and column popularity."""
    rows = rng.choice(n_rows, size=int(n_edges * 1.1), p=powerlaw_weights(rng, n_rows, 2.0))
    cols = rng.choice(n_cols, size=int(n_edges * 1.1), p=powerlaw_weights(rng, n_cols, 1.5))
    key = np.unique(rows.astype(np.int64) * n_cols + cols)
    key = rng.permutation(key)[:n_edges]
    return key // n_cols, key % n_cols


@dataclass
class DenseCase:
    account: IntArray
    item: IntArray
    time: FloatArray
    n_accounts: int
    n_items: int
    fraud_accounts: IntArray
    fraud_items: IntArray


def dense_case(
    seed: int,
    n_accounts: int,
    n_items: int,
    n_edges: int,
    block: int,
    density: float,
    fraud_span_s: float = 6 * HOUR,
    honest_span_s: float = 30 * DAY,
) -> DenseCase:
    """Honest power-law graph plus a block x block fraud block of the given density.

    Random camouflage as in FRAUDAR's injectCliqueCamo (testIdx 1): each fraud account
    adds as many edges to random honest items as it has fraud edges. Fraud edges fall
    within `fraud_span_s`; camouflage edges are timed like honest ones (the attacker
    mimics honest behaviour there).
    """
    rng = np.random.default_rng(seed)
    rows, cols = powerlaw_edges(rng, n_accounts, n_items, n_edges)
    times = T0 + rng.uniform(0, honest_span_s, rows.size)
    fraud_acc = rng.choice(n_accounts, block, replace=False).astype(np.int64)
    fraud_itm = rng.choice(n_items, block, replace=False).astype(np.int64)
    mask = rng.random((block, block)) < density
    fr, fc = np.nonzero(mask)
    f_rows = fraud_acc[fr]
    f_cols = fraud_itm[fc]
    start = T0 + rng.uniform(0, honest_span_s - fraud_span_s)
    f_times = start + rng.uniform(0, fraud_span_s, f_rows.size)
    honest_items = np.setdiff1d(np.arange(n_items), fraud_itm)
    per_account = mask.sum(axis=1)
    c_rows = np.repeat(fraud_acc, per_account)
    c_cols = rng.choice(honest_items, c_rows.size)
    c_times = T0 + rng.uniform(0, honest_span_s, c_rows.size)
    account = np.concatenate([rows, f_rows, c_rows]).astype(np.int64)
    item = np.concatenate([cols, f_cols, c_cols]).astype(np.int64)
    time = np.concatenate([times, f_times, c_times])
    order = np.argsort(time, kind="stable")
    return DenseCase(
        account=account[order],
        item=item[order],
        time=time[order],
        n_accounts=n_accounts,
        n_items=n_items,
        fraud_accounts=fraud_acc,
        fraud_items=fraud_itm,
    )


def row_col_f(
    pred_rows: set[int], pred_cols: set[int], true_rows: set[int], true_cols: set[int]
) -> float:
    """FRAUDAR's getFMeasure: F1 over rows and columns pooled."""
    hit = len(pred_rows & true_rows) + len(pred_cols & true_cols)
    if hit == 0:
        return 0.0
    precision = hit / (len(pred_rows) + len(pred_cols))
    recall = hit / (len(true_rows) + len(true_cols))
    return 2 * precision * recall / (precision + recall)


@dataclass
class LockstepCase:
    account: IntArray
    item: IntArray
    value: IntArray
    time: FloatArray
    ip: IntArray
    device: IntArray
    account_created: FloatArray
    n_accounts: int
    n_items: int
    groups: list[IntArray]
    """Planted lockstep groups (account codes)."""
    viral_accounts: IntArray
    nat_accounts: IntArray
    n_honest: int


def lockstep_case(
    seed: int,
    n_honest: int = 10_000,
    n_items: int = 20_000,
    honest_events: int = 300_000,
    n_groups: int = 20,
    span_days: float = 30.0,
    viral_size: int = 400,
    nat_size: int = 300,
) -> LockstepCase:
    """Honest power-law activity, lockstep groups, one viral burst and one big NAT.

    Groups: 20-200 accounts hitting 10-50 items, each member each item with
    probability 0.8 and the group's value, within a 1-6 h campaign; every other
    group also adds as many camouflage events (random items, values and times) as
    it has campaign events. Half the groups use young accounts on a few shared IPs,
    the other half old (bought) accounts on their own IPs. The viral burst: old
    honest accounts on one item within one hour, mostly agreeing. The NAT: old honest
    accounts behind one IP.
    """
    rng = np.random.default_rng(seed)
    span = span_days * DAY
    n_values = 5
    # Honest activity.
    acc = rng.choice(n_honest, honest_events, p=powerlaw_weights(rng, n_honest, 2.0))
    itm = rng.choice(n_items, honest_events, p=powerlaw_weights(rng, n_items, 1.5))
    truth = rng.integers(0, n_values, n_items)
    agree = rng.random(honest_events) < 0.7
    val = np.where(agree, truth[itm], rng.integers(0, n_values, honest_events))
    tim = T0 + rng.uniform(0, span, honest_events)
    created = T0 - rng.uniform(30 * DAY, 1000 * DAY, n_honest)
    young_honest = rng.random(n_honest) < 0.05
    created[young_honest] = T0 + rng.uniform(0, span, int(young_honest.sum()))
    home_ip = rng.integers(0, n_honest * 2, n_honest)
    nat = rng.choice(n_honest, nat_size, replace=False)
    home_ip[nat] = n_honest * 2  # one campus NAT address
    device = np.arange(n_honest, dtype=np.int64)
    parts_acc = [acc]
    parts_itm = [itm]
    parts_val = [val]
    parts_tim = [tim]
    # Viral burst on one popular item.
    viral_item = int(rng.integers(0, n_items))
    viral = rng.choice(np.flatnonzero(~young_honest), viral_size, replace=False)
    v_start = T0 + rng.uniform(0, span - HOUR)
    parts_acc.append(viral)
    parts_itm.append(np.full(viral_size, viral_item))
    parts_val.append(
        np.where(
            rng.random(viral_size) < 0.9, truth[viral_item], rng.integers(0, n_values, viral_size)
        )
    )
    parts_tim.append(v_start + rng.uniform(0, HOUR, viral_size))
    # Lockstep groups.
    groups: list[IntArray] = []
    next_acc = n_honest
    next_ip = n_honest * 2 + 1
    g_created: list[FloatArray] = []
    g_ip: list[IntArray] = []
    for g in range(n_groups):
        size = int(rng.integers(20, 201))
        n_target = int(rng.integers(10, 51))
        duration = rng.uniform(1, 6) * HOUR
        members = np.arange(next_acc, next_acc + size, dtype=np.int64)
        next_acc += size
        groups.append(members)
        targets = rng.choice(n_items, n_target, replace=False)
        value = (truth[targets] + 1 + rng.integers(0, n_values - 1, n_target)) % n_values
        start = T0 + rng.uniform(0, span - duration)
        hit = rng.random((size, n_target)) < 0.8
        mi, ti = np.nonzero(hit)
        parts_acc.append(members[mi])
        parts_itm.append(targets[ti])
        parts_val.append(value[ti])
        parts_tim.append(start + rng.uniform(0, duration, mi.size))
        if g % 2 == 1:  # camouflage: as many honest-looking events as campaign events
            parts_acc.append(rng.choice(members, mi.size))
            c_itm = rng.choice(n_items, mi.size, p=powerlaw_weights(rng, n_items, 1.5))
            parts_itm.append(c_itm)
            parts_val.append(truth[c_itm])
            parts_tim.append(T0 + rng.uniform(0, span, mi.size))
        if g % 2 == 0:  # young accounts on a few shared addresses
            g_created.append(start - rng.uniform(0, 3 * DAY, size))
            g_ip.append(next_ip + rng.integers(0, 3, size))
            next_ip += 3
        else:  # bought old accounts, each on its own address
            g_created.append(T0 - rng.uniform(60 * DAY, 900 * DAY, size))
            g_ip.append(np.arange(next_ip, next_ip + size))
            next_ip += size
    n_accounts = next_acc
    account = np.concatenate(parts_acc).astype(np.int64)
    item = np.concatenate(parts_itm).astype(np.int64)
    value_arr = np.concatenate(parts_val).astype(np.int64)
    time = np.concatenate(parts_tim)
    all_created = np.concatenate([created, *g_created])
    all_ip = np.concatenate([home_ip, *g_ip]).astype(np.int64)
    all_device = np.concatenate([device, np.arange(n_honest, n_accounts)]).astype(np.int64)
    order = np.argsort(time, kind="stable")
    account, item, value_arr, time = account[order], item[order], value_arr[order], time[order]
    return LockstepCase(
        account=account,
        item=item,
        value=value_arr,
        time=time,
        ip=all_ip[account],
        device=all_device[account],
        account_created=all_created,
        n_accounts=n_accounts,
        n_items=n_items,
        groups=groups,
        viral_accounts=np.sort(viral).astype(np.int64),
        nat_accounts=np.sort(nat).astype(np.int64),
        n_honest=n_honest,
    )


def group_scores(
    found: list[set[int]], planted: list[set[int]], n_honest: int, honest_ids: set[int]
) -> tuple[float, float, float]:
    """Group precision, group recall and share of honest accounts flagged.

    A found group is correct when at least half its members come from one planted
    group; a planted group is recalled when some found group has Jaccard >= 0.5 with it.
    """
    owner: dict[int, int] = {}
    for g, members in enumerate(planted):
        for m in members:
            owner[m] = g
    correct = 0
    for f in found:
        votes: dict[int, int] = {}
        for m in f:
            if m in owner:
                votes[owner[m]] = votes.get(owner[m], 0) + 1
        if votes and max(votes.values()) * 2 >= len(f):
            correct += 1
    recalled = sum(1 for p in planted if any(len(p & f) / len(p | f) >= 0.5 for f in found))
    flagged_honest = len(set().union(*found) & honest_ids) if found else 0
    precision = correct / len(found) if found else 1.0
    return precision, recalled / len(planted), flagged_honest / n_honest
