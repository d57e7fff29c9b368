"""Dense-block detection (FRAUDAR, Hooi et al. KDD 2016) on scipy.sparse.

A swarm that must move a model acts on the same few items, so its accounts and
those items form a block far denser than the honest graph. FRAUDAR greedily peels the
node whose removal costs the least weight and keeps the densest prefix; weighting
each column by 1/log(degree + c) makes popular items cheap, so camouflage edges to
popular items do not hide the block. Splitting item columns into time buckets
finds blocks that are sparse over a month but dense within hours.

`peel` removes, in vectorised passes, every node within (1 + epsilon) of the current
minimum (with epsilon = 0, exact ties together). The one-node-at-a-time greedy
orders it is checked against (`peel_naive`, `peel_exact`) are reference
implementations in benchmarks/graph_reference.py; benchmarks/graph_dense.py
measures all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from feedbackguard.graph.params import DensePolicy
from feedbackguard.graph.sets import unique
from feedbackguard.graph.window import BoolArray, EventWindow, FloatArray, IntArray

_BINCOUNT_SHARE = 8
"""Use bincount instead of ufunc.at when updates exceed 1/8 of the nodes (measured)."""

_DIRECT_CODES = 16
"""Compress (item, bucket) keys through a presence table when its size is at most this
many times the number of events (cheaper than sorting); np.unique otherwise."""

_RELATIVE_TIE = 1e-12
"""Float slack so that nodes of equal weight are treated as tied despite rounding."""


@dataclass(frozen=True, eq=False)
class PeelResult:
    """The densest prefix found by peeling: row and column indices and its density."""

    rows: IntArray
    cols: IntArray
    density: float
    """Total edge weight inside / (rows + columns): FRAUDAR's g(S)."""
    passes: int


@dataclass(frozen=True, eq=False)
class DenseBlock:
    """A dense account x item block, with the evidence a moderator needs."""

    accounts: IntArray
    items: IntArray
    columns: IntArray
    """Columns of the peeled matrix (item, or item x time bucket) inside the block."""
    events: IntArray
    """Indices (into the window) of the events inside the block."""
    density: float
    edges: int
    expected_edges: float
    lift: float
    strength: float
    """0..1: how far the lift is above the policy minimum (0.5 at the minimum)."""
    start: float
    end: float


def column_weights(matrix: sp.csr_matrix, offset: float) -> FloatArray:
    """FRAUDAR's log-weights: a column of degree d weighs 1/log(d + offset)."""
    degree = np.asarray(matrix.sum(axis=0)).ravel()
    return np.asarray(1.0 / np.log(degree + offset), dtype=np.float64)


def weighted(matrix: sp.csr_matrix, offset: float) -> sp.csr_matrix:
    """The binary matrix with each edge weighted by its column's log-weight."""
    out = matrix.tocsr(copy=True)
    out.data = column_weights(matrix, offset)[out.indices]
    return out


def _gather(indptr: IntArray, nodes: IntArray) -> IntArray:
    """Positions in a CSR data array of all entries of the given rows."""
    starts = indptr[nodes]
    lengths = indptr[nodes + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths
    return np.asarray(np.repeat(starts - before, lengths) + np.arange(total), dtype=np.int64)


def densest_prefix(
    order_rows: IntArray, order_cols: IntArray, best_step: int
) -> tuple[IntArray, IntArray]:
    """The nodes still present after `best_step` removal steps."""
    rows = np.flatnonzero(order_rows > best_step)
    cols = np.flatnonzero(order_cols > best_step)
    return rows.astype(np.int64), cols.astype(np.int64)


class _Peeling:
    """Live rows/columns of a weighted bipartite graph and their weighted degrees."""

    def __init__(self, matrix: sp.spmatrix, transposed: sp.csr_matrix | None = None) -> None:
        self.w = sp.csr_matrix(matrix, dtype=np.float64)
        self.wt = self.w.T.tocsr() if transposed is None else transposed
        self.row_d = np.asarray(self.w.sum(axis=1)).ravel()
        self.col_d = np.asarray(self.w.sum(axis=0)).ravel()
        self.alive_r = self.row_d > 0
        self.alive_c = self.col_d > 0
        self.live_r = np.flatnonzero(self.alive_r)
        self.live_c = np.flatnonzero(self.alive_c)
        self.total = float(self.w.data.sum())

    @property
    def size(self) -> int:
        return int(self.live_r.size + self.live_c.size)

    def lowest(self) -> float:
        return min(float(self.row_d[self.live_r].min()), float(self.col_d[self.live_c].min()))

    def cut(self, threshold: float) -> tuple[IntArray, IntArray]:
        """Remove every live node whose weighted degree is <= threshold, at once."""
        cut_r = self.row_d[self.live_r] <= threshold
        cut_c = self.col_d[self.live_c] <= threshold
        gone_r = self.live_r[cut_r]
        gone_c = self.live_c[cut_c]
        if gone_r.size:
            self.alive_r[gone_r] = False
            self.live_r = self.live_r[~cut_r]
            self.total -= _drop(self.w, gone_r, self.alive_c, self.col_d)
        if gone_c.size:
            self.alive_c[gone_c] = False
            self.live_c = self.live_c[~cut_c]
            self.total -= _drop(self.wt, gone_c, self.alive_r, self.row_d)
        return gone_r, gone_c


def _drop(
    adjacency: sp.csr_matrix, gone: IntArray, alive_other: BoolArray, degree_other: FloatArray
) -> float:
    """Subtract the edges of removed nodes from their live neighbours' degrees."""
    pos = _gather(adjacency.indptr, gone)
    other = adjacency.indices[pos]
    vals = adjacency.data[pos]
    keep = alive_other[other]
    other, vals = other[keep], vals[keep]
    if other.size * _BINCOUNT_SHARE > degree_other.size:
        # Many updates: one pass over the whole degree array beats scattered writes.
        degree_other -= np.bincount(other, vals, minlength=degree_other.size)
    else:
        np.subtract.at(degree_other, other, vals)
    return float(vals.sum())


def _tie(value: float) -> float:
    return _RELATIVE_TIE * max(1.0, abs(value))


def peel(matrix: sp.spmatrix, epsilon: float = 0.0) -> PeelResult:
    """Greedy peeling in vectorised passes (see the module docstring).

    `matrix` holds non-negative edge weights (rows = accounts, columns = items).
    Each pass costs O(live nodes + edges removed).
    """
    state = _Peeling(matrix)
    never = np.iinfo(np.int64).max
    removed_r = np.where(state.alive_r, never, 0).astype(np.int64)
    removed_c = np.where(state.alive_c, never, 0).astype(np.int64)
    size = state.size
    best = state.total / size if size else 0.0
    best_step = 0
    step = 0
    while state.live_r.size and state.live_c.size:
        step += 1
        low = state.lowest()
        # abs(): rounding can leave a degree slightly below zero after many subtractions.
        gone_r, gone_c = state.cut(low + abs(low) * epsilon + _tie(low))
        removed_r[gone_r] = step
        removed_c[gone_c] = step
        size = state.size
        if size and state.total / size > best:
            best = state.total / size
            best_step = step
    rows, cols = densest_prefix(removed_r, removed_c, best_step)
    return PeelResult(rows=rows, cols=cols, density=best, passes=step)


def peel_parallel(
    matrix: sp.spmatrix, epsilon: float, transposed: sp.csr_matrix | None = None
) -> PeelResult:
    """Bahmani et al. (VLDB 2012) parallel peeling: each pass removes every node whose
    weight is at most (1 + epsilon) x the average, so it needs only O(log n / epsilon)
    passes and its best prefix is a 2(1 + epsilon)-approximation of the densest
    subgraph: a cheap, good lower bound for `core`. `transposed` may pass matrix.T
    in CSR form when the caller already has it."""
    state = _Peeling(matrix, transposed)
    never = np.iinfo(np.int64).max
    removed_r = np.where(state.alive_r, never, 0).astype(np.int64)
    removed_c = np.where(state.alive_c, never, 0).astype(np.int64)
    best = state.total / state.size if state.size else 0.0
    best_step = 0
    step = 0
    while state.live_r.size and state.live_c.size:
        step += 1
        average = 2.0 * state.total / state.size
        gone_r, gone_c = state.cut(average * (1.0 + epsilon) + _tie(average))
        removed_r[gone_r] = step
        removed_c[gone_c] = step
        if state.size and state.total / state.size > best:
            best = state.total / state.size
            best_step = step
    rows, cols = densest_prefix(removed_r, removed_c, best_step)
    return PeelResult(rows=rows, cols=cols, density=best, passes=step)


def core(
    matrix: sp.spmatrix, floor: float, transposed: sp.csr_matrix | None = None
) -> tuple[IntArray, IntArray]:
    """Rows and columns left after repeatedly removing every node of weight < floor.

    The densest subgraph, of density g*, has no node of weight below g* inside it
    (removing one would raise the density), so for any floor <= g* it lies within
    this core: peeling the core alone loses nothing and skips most of the graph.
    """
    state = _Peeling(matrix, transposed)
    while state.live_r.size and state.live_c.size:
        gone_r, gone_c = state.cut(floor - _tie(floor))
        if gone_r.size == 0 and gone_c.size == 0:
            break
    if not (state.live_r.size and state.live_c.size):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.sort(state.live_r).astype(np.int64), np.sort(state.live_c).astype(np.int64)


def densest(
    matrix: sp.spmatrix,
    epsilon: float,
    coarse_epsilon: float,
    fine_max_nodes: int,
    large_epsilon: float,
) -> PeelResult:
    """`peel` restricted to the core above a cheap lower bound on the best density.

    A parallel peel (`peel_parallel`, a dozen passes) finds a subgraph whose density
    is a lower bound; the fine peel then runs only on the core above that bound,
    with `epsilon`, or with the coarser `large_epsilon` when that core has more than
    `fine_max_nodes` nodes (an honest bulk takes thousands of exact-order passes).
    Returns the denser of the two answers.
    """
    w = sp.csr_matrix(matrix, dtype=np.float64)
    wt = w.T.tocsr()
    rough = peel_parallel(w, coarse_epsilon, wt)
    rows, cols = core(w, rough.density, wt)
    if rows.size == 0 or cols.size == 0:
        return rough
    tolerance = epsilon if rows.size + cols.size <= fine_max_nodes else large_epsilon
    fine = peel(w[rows][:, cols], tolerance)
    if fine.density < rough.density:
        return rough
    return PeelResult(
        rows=rows[fine.rows],
        cols=cols[fine.cols],
        density=fine.density,
        passes=rough.passes + fine.passes,
    )


def fraudar(matrix: sp.spmatrix, offset: float = 5.0, epsilon: float = 0.0) -> PeelResult:
    """FRAUDAR with log-weighted columns on a binary account x item matrix."""
    binary = sp.csr_matrix(matrix, dtype=np.float64)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    return peel(weighted(binary, offset), epsilon)


@dataclass(frozen=True, eq=False)
class _Columns:
    """The columns of the peeled matrix: item, or item x time bucket."""

    of_event: IntArray
    item: IntArray
    key: IntArray
    """item * n_buckets + bucket per column, ascending."""
    n_buckets: int

    def adjacent(self, cols: IntArray) -> BoolArray:
        """Columns of the same items as `cols` in the neighbouring time buckets."""
        out = np.zeros(self.item.shape[0], dtype=bool)
        if self.n_buckets <= 1 or cols.size == 0:
            return out
        for step in (-1, 1):
            cand = self.key[cols] + step
            same_item = cand // self.n_buckets == self.key[cols] // self.n_buckets
            cand = cand[same_item & (cand >= 0)]
            pos = np.minimum(np.searchsorted(self.key, cand), self.key.size - 1)
            out[pos[self.key[pos] == cand]] = True
        return out


def _columns(window: EventWindow, policy: DensePolicy) -> _Columns:
    """Column code per event (item, or item x time bucket) and column -> item."""
    if not policy.use_time or window.n_events == 0:
        items = np.arange(window.n_items, dtype=np.int64)
        return _Columns(window.item, items, items, 1)
    bucket = np.floor((window.time - window.time.min()) / policy.time_bucket_s).astype(np.int64)
    n_buckets = int(bucket.max()) + 1
    key = window.item * n_buckets + bucket
    span = window.n_items * n_buckets
    if span <= _DIRECT_CODES * window.n_events:
        present = np.zeros(span, dtype=bool)
        present[key] = True
        uniq = np.flatnonzero(present).astype(np.int64)
        code = (np.cumsum(present) - 1)[key]
    else:
        uniq, code = np.unique(key, return_inverse=True)
    return _Columns(code.astype(np.int64), (uniq // n_buckets).astype(np.int64), uniq, n_buckets)


def _strength(lift: float, policy: DensePolicy) -> float:
    # 0.5 at the minimum lift, 1 at its square: lift is a ratio, so judge it in logs.
    extra = math.log(lift / policy.min_lift) / math.log(policy.min_lift)
    return min(1.0, 0.5 + 0.5 * max(0.0, extra))


def detect_dense_blocks(window: EventWindow, policy: DensePolicy) -> list[DenseBlock]:
    """Blocks of accounts x items far denser than their degrees predict.

    Repeats FRAUDAR up to `max_blocks` times, removing each found block's edges,
    and stops at the first block that is too small or whose lift is below
    `min_lift` (the rest of the graph is then honest-looking).
    """
    if window.n_events == 0:
        return []
    columns = _columns(window, policy)
    shape = (window.n_accounts, int(columns.item.shape[0]))
    binary = sp.csr_matrix(
        (np.ones(window.n_events), (window.account, columns.of_event)), shape=shape
    )
    binary.sum_duplicates()
    binary.data[:] = 1.0
    blocks: list[DenseBlock] = []
    for _ in range(policy.max_blocks):
        if binary.nnz == 0:
            break
        found = densest(
            weighted(binary, policy.col_log_offset),
            policy.epsilon,
            policy.coarse_epsilon,
            policy.fine_max_nodes,
            policy.large_epsilon,
        )
        block = _evaluate(window, binary, found, columns, policy)
        if block is None:
            break
        blocks.append(block)
        binary = _without(binary, block.accounts, block.columns)
    return blocks


def _expand(
    binary: sp.csr_matrix,
    rows: IntArray,
    cols: IntArray,
    columns: _Columns,
    policy: DensePolicy,
) -> tuple[IntArray, IntArray]:
    """Add the nodes that belong to the block as much as its weaker members do.

    Accounts: at least `expand_ratio` of the block's median in-block degree.
    Columns: at least `expand_ratio` of the column's edges come from block accounts
    (a popular item that camouflage touched is not part of the block), and either
    the same degree rule as accounts, or the column is a block item in a
    neighbouring time bucket (a burst straddling a bucket edge stays one block).
    """
    if policy.expand_ratio <= 0 or rows.size == 0 or cols.size == 0:
        return rows, cols
    to_cols = np.asarray(binary[:, cols].sum(axis=1)).ravel()
    need = max(policy.min_mean_degree, policy.expand_ratio * float(np.median(to_cols[rows])))
    rows = np.union1d(rows, np.flatnonzero(to_cols >= need)).astype(np.int64)
    to_rows = np.asarray(binary[rows].sum(axis=0)).ravel()
    col_deg = np.asarray(binary.sum(axis=0)).ravel()
    need = max(policy.min_mean_degree, policy.expand_ratio * float(np.median(to_rows[cols])))
    near = columns.adjacent(cols) & (to_rows >= policy.min_mean_degree)
    pure = ((to_rows >= need) | near) & (to_rows >= policy.expand_ratio * col_deg)
    cols = np.union1d(cols, np.flatnonzero(pure)).astype(np.int64)
    return rows, cols


def _evaluate(
    window: EventWindow,
    binary: sp.csr_matrix,
    found: PeelResult,
    columns: _Columns,
    policy: DensePolicy,
) -> DenseBlock | None:
    rows, cols = _expand(binary, found.rows, found.cols, columns, policy)
    items = unique(columns.item[cols])
    if rows.size < policy.min_accounts or items.size < policy.min_items:
        return None
    edges = int(binary[rows][:, cols].nnz)
    if edges < policy.min_mean_degree * max(rows.size, cols.size):
        return None
    row_deg = np.asarray(binary.sum(axis=1)).ravel()
    col_deg = np.asarray(binary.sum(axis=0)).ravel()
    expected = float(row_deg[rows].sum()) * float(col_deg[cols].sum()) / binary.nnz
    lift = edges / expected if expected > 0 else math.inf
    if lift < policy.min_lift:
        return None
    in_rows = _mask(window.n_accounts, rows)
    in_cols = _mask(columns.item.shape[0], cols)
    events = np.flatnonzero(in_rows[window.account] & in_cols[columns.of_event]).astype(np.int64)
    times = window.time[events]
    return DenseBlock(
        accounts=rows,
        items=items.astype(np.int64),
        columns=cols,
        events=events,
        density=found.density,
        edges=edges,
        expected_edges=expected,
        lift=lift,
        strength=_strength(lift, policy),
        start=float(times.min()) if times.size else 0.0,
        end=float(times.max()) if times.size else 0.0,
    )


def _mask(n: int, idx: IntArray) -> BoolArray:
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


def _without(binary: sp.csr_matrix, rows: IntArray, cols: IntArray) -> sp.csr_matrix:
    """The matrix with the edges inside rows x cols removed (FRAUDAR's detectMultiple)."""
    coo = binary.tocoo()
    inside = _mask(binary.shape[0], rows)[coo.row] & _mask(binary.shape[1], cols)[coo.col]
    keep = ~inside
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=binary.shape)
