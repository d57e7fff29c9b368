"""Lockstep groups: accounts that act on the same items, the same way, at the same time.

CopyCatch (Beutel et al. WWW 2013) and SynchroTrap (Cao et al. CCS 2014) observe that
a fake-account swarm is driven by one operator, so its members' actions line up in
time far more than any two honest users' do. Here two actions *match* when they are
on the same item with the same value within `t_sim_s`; accounts that match on
several items, on a good share of their activity and far more often than chance
allows for their activity, are linked; groups are the connected components of that
similarity graph after a small k-core pruning. A group's events are its members'
synchronised actions only, and it is flagged only when those cover several items.

An organic burst (a viral item reported by hundreds of unrelated accounts) gives
each pair of reporters one matched item, or a few when the crowd spills over to
neighbouring items, too few for a flagged group. Heavy users who return to the same
popular items day after day meet there by chance, which the chance test discounts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from feedbackguard.graph.infrastructure import shared_infrastructure
from feedbackguard.graph.params import LockstepPolicy
from feedbackguard.graph.sets import member, unique
from feedbackguard.graph.window import BoolArray, EventWindow, FloatArray, IntArray

_INT64_LIMIT = 2**62


@dataclass(frozen=True, eq=False)
class SimilarPairs:
    """Account pairs (a < b) that passed the similarity tests, with their evidence."""

    a: IntArray
    b: IntArray
    shared_items: IntArray
    """Distinct matched items per pair."""
    similarity: FloatArray
    mean_gap_s: FloatArray
    """Mean time between the pair's matched actions (one per matched item)."""


@dataclass(frozen=True, eq=False)
class LockstepGroup:
    """A group of accounts acting in lockstep, with the statistics behind its score."""

    members: IntArray
    items: IntArray
    """Items on which at least two members matched."""
    events: IntArray
    """Indices of the members' events on those items."""
    pairs: int
    density: float
    """Similar pairs / possible pairs among members."""
    synchrony: float
    """1 - median over member pairs of their mean matched-action gap / t_sim."""
    value_agreement: float
    """Share of members' events on the shared items that carry the group's modal value."""
    young_share: float
    infrastructure_share: float
    start: float
    end: float
    score: float
    flagged: bool


@dataclass(frozen=True, eq=False)
class _Matches:
    a: IntArray
    b: IntArray
    item: IntArray
    gap: FloatArray


def _neighbours(
    key: IntArray, t: FloatArray, acc: IntArray, policy: LockstepPolicy
) -> Iterator[tuple[int, BoolArray]]:
    """Over arrays sorted by (key, time): per offset o, which positions i have i + o
    with the same key, within t_sim, from another account. Each position is compared
    with the next `max_neighbours`; once no pair at some offset shares key and time
    window, none can at a larger one (both are monotone), so the scan stops."""
    for offset in range(1, policy.max_neighbours + 1):
        if offset >= key.size:
            return
        near = (key[offset:] == key[:-offset]) & (t[offset:] - t[:-offset] <= policy.t_sim_s)
        if not near.any():
            return
        yield offset, near & (acc[offset:] != acc[:-offset])


def _matches(window: EventWindow, policy: LockstepPolicy, weight: FloatArray) -> _Matches:
    """Every (account, account, item) whose actions match, with the time gap.

    Events are sorted by (item, value, time) and scanned by `_neighbours`.
    Items whose match `weight` is below `min_item_weight` are left out: they would
    produce most of the matches (measured: 21 s of a 22 s analysis of 1M events)
    and almost none of the evidence.
    """
    n_values = int(window.value.max()) + 1 if window.n_events else 1
    key = window.item * n_values + window.value
    key = np.where(weight[window.item] >= policy.min_item_weight, key, -1)
    order = np.lexsort((window.time, key))
    order = order[key[order] >= 0]
    k = key[order]
    t = window.time[order]
    acc = window.account[order]
    itm = window.item[order]
    parts_a: list[IntArray] = []
    parts_b: list[IntArray] = []
    parts_i: list[IntArray] = []
    parts_g: list[FloatArray] = []
    for offset, same in _neighbours(k, t, acc, policy):
        hit = np.flatnonzero(same)
        left = acc[hit]
        right = acc[hit + offset]
        parts_a.append(np.minimum(left, right))
        parts_b.append(np.maximum(left, right))
        parts_i.append(itm[hit])
        parts_g.append(t[hit + offset] - t[hit])
    if not parts_a:
        empty = np.empty(0, dtype=np.int64)
        return _Matches(empty, empty, empty, np.empty(0))
    return _Matches(
        np.concatenate(parts_a),
        np.concatenate(parts_b),
        np.concatenate(parts_i),
        np.concatenate(parts_g),
    )


def _items_per_account(window: EventWindow) -> IntArray:
    pairs = unique(window.account * max(window.n_items, 1) + window.item)
    return np.bincount(pairs // max(window.n_items, 1), minlength=window.n_accounts).astype(
        np.int64
    )


def _accounts_per_item(window: EventWindow) -> FloatArray:
    pairs = unique(window.item * max(window.n_accounts, 1) + window.account)
    per_item = np.bincount(pairs // max(window.n_accounts, 1), minlength=window.n_items)
    return np.maximum(per_item, 1).astype(np.float64)


def _pair_item_key(m: _Matches, n_accounts: int, n_items: int) -> IntArray:
    """One int64 per (account pair, item), ordered by pair then item."""
    pair = m.a * n_accounts + m.b
    if n_accounts * n_accounts * max(n_items, 1) < _INT64_LIMIT:
        return np.asarray(pair * max(n_items, 1) + m.item, dtype=np.int64)
    # Too many ids for one int64: rank the pairs first (rarely needed, slower).
    _, pair_rank = np.unique(pair, return_inverse=True)
    return np.asarray(pair_rank.astype(np.int64) * max(n_items, 1) + m.item, dtype=np.int64)


def similar_pairs(window: EventWindow, policy: LockstepPolicy) -> SimilarPairs:
    """Account pairs matching on enough distinct items, far more than chance allows."""
    # A match on a hot item is weak evidence: on an item that thousands of accounts act
    # on, two honest accounts meet by chance. Each matched item counts
    # min(1, hot_item_accounts / its accounts in the window).
    weight = np.minimum(1.0, policy.hot_item_accounts / _accounts_per_item(window))
    m = _matches(window, policy, weight)
    empty = np.empty(0, dtype=np.int64)
    if m.a.size == 0:
        return SimilarPairs(empty, empty, empty, np.empty(0), np.empty(0))
    # One vote per (pair, item): repeated actions on one item are not more evidence.
    key = _pair_item_key(m, window.n_accounts, window.n_items)
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    pick = order[first]
    a, b, gap = m.a[pick], m.b[pick], m.gap[pick]
    new_pair = np.ones(a.size, dtype=bool)
    new_pair[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(new_pair)
    matched = np.diff(np.append(starts, a.size))
    pair_id = np.cumsum(new_pair) - 1
    mean_gap = np.bincount(pair_id, weights=gap) / matched
    counts = np.bincount(pair_id, weights=weight[m.item[pick]])
    pa, pb = a[starts], b[starts]
    n_items = _items_per_account(window)
    similarity = counts / np.minimum(n_items[pa], n_items[pb])
    keep = (counts >= policy.min_shared_items) & (similarity >= policy.min_similarity)
    chance = _chance_matches(window, policy, weight, pa[keep], pb[keep])
    keep[np.flatnonzero(keep)[counts[keep] < policy.min_chance_ratio * chance]] = False
    disagreed = _disagreed_items(window, policy, weight, pa[keep], pb[keep])
    agreement = matched[keep] / (matched[keep] + disagreed)
    keep[np.flatnonzero(keep)[agreement < policy.min_value_agreement]] = False
    return SimilarPairs(
        a=pa[keep].astype(np.int64),
        b=pb[keep].astype(np.int64),
        shared_items=matched[keep].astype(np.int64),
        similarity=similarity[keep].astype(np.float64),
        mean_gap_s=mean_gap[keep],
    )


def _chance_matches(
    window: EventWindow, policy: LockstepPolicy, weight: FloatArray, pa: IntArray, pb: IntArray
) -> FloatArray:
    """Per pair, the weighted matched items expected by chance: on each item both
    accounts acted on, n_a * n_b actions, each pair of them within t_sim of each other
    with probability 2 t_sim / span if actions fell uniformly over the window (its span,
    at least `chance_min_span_s`)."""
    if pa.size == 0 or window.n_events == 0:
        return np.zeros(pa.size)
    span = max(float(window.time.max() - window.time.min()), policy.chance_min_span_s)
    counts = sp.csr_matrix(
        (np.ones(window.n_events), (window.account, window.item)),
        shape=(window.n_accounts, window.n_items),
    )  # duplicate (account, item) entries are summed: actions per account and item
    both = counts[pa].multiply(counts[pb]).tocsr()
    both.data = np.minimum(1.0, both.data * (2 * policy.t_sim_s / span)) * weight[both.indices]
    return np.asarray(both.sum(axis=1)).ravel()


def _disagreed_items(
    window: EventWindow, policy: LockstepPolicy, weight: FloatArray, pa: IntArray, pb: IntArray
) -> IntArray:
    """Per candidate pair (pa[i], pb[i]), the distinct items on which the two acted
    within t_sim with *different* values. Honest accounts that meet on the same
    popular items by chance disagree about as often as their values differ; a swarm
    never disagrees with itself."""
    out = np.zeros(pa.size, dtype=np.int64)
    if pa.size == 0:
        return out
    n = window.n_accounts
    wanted = np.sort(pa * n + pb)
    item = np.where(weight[window.item] >= policy.min_item_weight, window.item, -1)
    order = np.lexsort((window.time, item))
    order = order[item[order] >= 0]
    it, t, acc, val = item[order], window.time[order], window.account[order], window.value[order]
    keys: list[IntArray] = []
    for offset, near in _neighbours(it, t, acc, policy):
        hit = np.flatnonzero(near & (val[offset:] != val[:-offset]))
        lo = np.minimum(acc[hit], acc[hit + offset])
        hi = np.maximum(acc[hit], acc[hit + offset])
        pair = lo * n + hi
        mine = member(pair, wanted)
        keys.append(pair[mine] * max(window.n_items, 1) + it[hit][mine])
    if not keys:
        return out
    pair_items = unique(np.concatenate(keys)) // max(window.n_items, 1)
    pairs, per_pair = np.unique(pair_items, return_counts=True)
    if pairs.size == 0:
        return out
    where = np.searchsorted(pairs, pa * n + pb)
    found = (where < pairs.size) & (pairs[np.minimum(where, pairs.size - 1)] == pa * n + pb)
    out[found] = per_pair[where[found]]
    return out


def _kcore(n: int, a: IntArray, b: IntArray, k: int) -> BoolArray:
    """Nodes of the k-core of the undirected graph (a, b)."""
    alive = np.zeros(n, dtype=bool)
    alive[a] = True
    alive[b] = True
    while True:
        live = alive[a] & alive[b]
        deg = np.bincount(a[live], minlength=n) + np.bincount(b[live], minlength=n)
        drop = alive & (deg < k)
        if not drop.any():
            return alive
        alive &= ~drop


def detect_lockstep(
    window: EventWindow, policy: LockstepPolicy, young: BoolArray
) -> tuple[list[LockstepGroup], SimilarPairs]:
    """Lockstep groups (flagged or not) and the similarity edges they came from.

    `young` is the per-account young flag (see `EventWindow.young`).
    """
    pairs = similar_pairs(window, policy)
    if pairs.a.size == 0:
        return [], pairs
    n = window.n_accounts
    core = _kcore(n, pairs.a, pairs.b, policy.min_core_degree)
    live = core[pairs.a] & core[pairs.b]
    a, b = pairs.a[live], pairs.b[live]
    graph = sp.csr_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups: list[LockstepGroup] = []
    members_of = np.flatnonzero(core)
    lab = label[members_of]
    for comp in unique(lab):
        members = members_of[lab == comp]
        if members.size < policy.min_group_size:
            continue
        in_group = np.zeros(n, dtype=bool)
        in_group[members] = True
        mine = in_group[pairs.a] & in_group[pairs.b]
        groups.append(_describe(window, policy, members, in_group, pairs, mine, young))
    groups.sort(key=lambda g: (-g.score, -g.members.size))
    return groups, pairs


def _describe(
    window: EventWindow,
    policy: LockstepPolicy,
    members: IntArray,
    in_group: BoolArray,
    pairs: SimilarPairs,
    mine: BoolArray,
    young: BoolArray,
) -> LockstepGroup:
    n_pairs = int(mine.sum())
    possible = members.size * (members.size - 1) / 2
    density = n_pairs / possible
    gap = float(np.median(pairs.mean_gap_s[mine]))
    synchrony = max(0.0, 1.0 - gap / policy.t_sim_s)
    member_events = _synchronised(window, policy, np.flatnonzero(in_group[window.account]))
    ev_items = window.item[member_events]
    # Shared items: where at least min_similarity of the members (and two) acted in step,
    # so that camouflage on popular items, and members' other actions on the targets
    # days apart, do not count as what the group did.
    acc_item = unique(window.account[member_events] * max(window.n_items, 1) + ev_items)
    per_item = np.bincount(acc_item % max(window.n_items, 1), minlength=window.n_items)
    need = max(2, math.ceil(policy.min_similarity * members.size))
    shared = np.flatnonzero(per_item >= need)
    on_shared = np.zeros(window.n_items, dtype=bool)
    on_shared[shared] = True
    events = member_events[on_shared[ev_items]]
    agreement = _value_agreement(window, events)
    times = window.time[events]
    young_share = float(young[members].mean())
    infra = shared_infrastructure(window, members)
    score = min(
        1.0,
        policy.base_score
        + policy.synchrony_weight * synchrony
        + policy.young_weight * young_share
        + policy.infrastructure_weight * infra
        + policy.density_weight * density,
    )
    return LockstepGroup(
        members=members.astype(np.int64),
        items=shared.astype(np.int64),
        events=events.astype(np.int64),
        pairs=n_pairs,
        density=density,
        synchrony=synchrony,
        value_agreement=agreement,
        young_share=young_share,
        infrastructure_share=infra,
        start=float(times.min()) if times.size else 0.0,
        end=float(times.max()) if times.size else 0.0,
        score=score,
        flagged=score >= policy.min_score and shared.size >= policy.min_group_items,
    )


def _synchronised(window: EventWindow, policy: LockstepPolicy, events: IntArray) -> IntArray:
    """The `events` that match another account's event among them: same item and value
    within t_sim."""
    if events.size == 0:
        return events
    n_values = int(window.value.max()) + 1
    key = window.item[events] * n_values + window.value[events]
    order = np.lexsort((window.time[events], key))
    ev, k, t = events[order], key[order], window.time[events][order]
    acc = window.account[ev]
    hit = np.zeros(ev.size, dtype=bool)
    for offset, near in _neighbours(k, t, acc, policy):
        hit[:-offset] |= near
        hit[offset:] |= near
    return np.sort(ev[hit])


def _value_agreement(window: EventWindow, events: IntArray) -> float:
    """Share of events whose value is the most common value on their item."""
    if events.size == 0:
        return 0.0
    n_values = int(window.value.max()) + 1
    key = window.item[events] * n_values + window.value[events]
    _, counts = np.unique(key, return_counts=True)
    uniq_keys = unique(key)
    per_item_max = np.zeros(window.n_items, dtype=np.int64)
    np.maximum.at(per_item_max, uniq_keys // n_values, counts)
    return float(per_item_max.sum() / events.size)
