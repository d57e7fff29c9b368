"""Reference implementations the graph benchmarks and tests compare against.

Not used by the pipeline, so kept out of the package:

* `peel_naive` (textbook greedy, O(V^2 + E)) and `peel_exact` (lazy-deletion heap,
  O(E log V)): FRAUDAR's exact one-node-at-a-time peeling order, against which
  `feedbackguard.graph.dense.peel` (vectorised passes) is checked;
* `sybilscar`: SybilSCAR's local rule (Wang et al. 2017: prior plus the
  degree-normalised mean of the neighbours' residuals, with a homophily factor below
  one so that it is a contraction), the other signed design against which
  `feedbackguard.graph.trust.signed_sybilrank` was chosen (benchmarks/graph_sybil.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from feedbackguard.graph.dense import PeelResult, densest_prefix
from feedbackguard.graph.window import FloatArray, IntArray


def peel_exact(matrix: sp.spmatrix) -> PeelResult:
    """Exact greedy order with a lazy-deletion binary heap: O(E log V).

    Pure Python per edge, so about 10x slower than `peel` on a million edges; kept
    as the reference the batched version is tested against.
    """
    w = sp.csr_matrix(matrix, dtype=np.float64)
    wt = w.T.tocsr()
    n_rows = w.shape[0]
    delta = np.concatenate(
        [np.asarray(w.sum(axis=1)).ravel(), np.asarray(w.sum(axis=0)).ravel()]
    ).tolist()
    alive = [d > 0 for d in delta]
    heap = [(d, v) for v, d in enumerate(delta) if d > 0]
    heapq.heapify(heap)
    total = float(w.data.sum())
    size = len(heap)
    best = total / size if size else 0.0
    best_step = 0
    never = np.iinfo(np.int64).max
    order = [never if a else 0 for a in alive]
    r_ptr, r_idx, r_val = w.indptr.tolist(), w.indices.tolist(), w.data.tolist()
    c_ptr, c_idx, c_val = wt.indptr.tolist(), wt.indices.tolist(), wt.data.tolist()
    step = 0
    live_rows = sum(alive[:n_rows])
    live_cols = size - live_rows
    while heap and live_rows and live_cols:
        d, v = heapq.heappop(heap)
        if not alive[v] or d != delta[v]:
            continue
        step += 1
        alive[v] = False
        order[v] = step
        total -= delta[v]
        if v < n_rows:
            live_rows -= 1
            ptr, idx, val, shift = r_ptr, r_idx, r_val, n_rows
            lo, hi = ptr[v], ptr[v + 1]
        else:
            live_cols -= 1
            ptr, idx, val, shift = c_ptr, c_idx, c_val, 0
            lo, hi = ptr[v - n_rows], ptr[v - n_rows + 1]
        for k in range(lo, hi):
            u = idx[k] + shift
            if alive[u]:
                delta[u] -= val[k]
                heapq.heappush(heap, (delta[u], u))
        size -= 1
        if size and total / size > best:
            best = total / size
            best_step = step
    ranks = np.asarray(order, dtype=np.int64)
    rows, cols = densest_prefix(ranks[:n_rows], ranks[n_rows:], best_step)
    return PeelResult(rows=rows, cols=cols, density=best, passes=step)


def peel_naive(matrix: sp.spmatrix) -> PeelResult:
    """Textbook greedy: a full arg-min scan per removed node, O(V^2 + E)."""
    w = sp.csr_matrix(matrix, dtype=np.float64)
    wt = w.T.tocsr()
    n_rows = w.shape[0]
    delta = np.concatenate([np.asarray(w.sum(axis=1)).ravel(), np.asarray(w.sum(axis=0)).ravel()])
    alive = delta > 0
    never = np.iinfo(np.int64).max
    order = np.where(alive, never, 0).astype(np.int64)
    total = float(w.data.sum())
    size = int(alive.sum())
    best = total / size if size else 0.0
    best_step = 0
    step = 0
    masked = np.where(alive, delta, np.inf)
    while np.isfinite(masked[:n_rows]).any() and np.isfinite(masked[n_rows:]).any():
        v = int(np.argmin(masked))
        step += 1
        total -= float(delta[v])
        alive[v] = False
        order[v] = step
        masked[v] = np.inf
        if v < n_rows:
            lo, hi = w.indptr[v], w.indptr[v + 1]
            nbrs = w.indices[lo:hi] + n_rows
            vals = w.data[lo:hi]
        else:
            lo, hi = wt.indptr[v - n_rows], wt.indptr[v - n_rows + 1]
            nbrs = wt.indices[lo:hi]
            vals = wt.data[lo:hi]
        live = alive[nbrs]
        delta[nbrs[live]] -= vals[live]
        masked[nbrs[live]] = delta[nbrs[live]]
        size -= 1
        if size and total / size > best:
            best = total / size
            best_step = step
    rows, cols = densest_prefix(order[:n_rows], order[n_rows:], best_step)
    return PeelResult(rows=rows, cols=cols, density=best, passes=step)


def sybilscar(
    adj: sp.spmatrix,
    trusted: Sequence[int] | IntArray,
    rejected: Sequence[int] | IntArray,
    *,
    homophily: float,
    prior: float,
    max_iterations: int,
    tolerance: float,
) -> FloatArray:
    """Sybil residual per node in [-0.5, 0.5] (higher = more likely Sybil).

    Trusted seeds start at -prior, rejected ones at +prior, others at 0; each step a
    node takes its prior plus `homophily` times the mean residual of its neighbours
    (weighted), clipped, until the largest change is below `tolerance`.
    """
    if not 0 < homophily < 1:
        raise ValueError("homophily must be in (0, 1) for the iteration to converge")
    a = sp.csr_matrix(adj, dtype=np.float64)
    n = a.shape[0]
    deg = np.asarray(a.sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)
    q = np.zeros(n)
    q[np.asarray(trusted, dtype=np.int64)] = -prior
    q[np.asarray(rejected, dtype=np.int64)] = prior
    # Row-normalised operator D^-1 A: each node averages its neighbours.
    mean_op = sp.diags(inv * homophily) @ a
    p = q.copy()
    for _ in range(max_iterations):
        nxt = np.clip(q + mean_op @ p, -0.5, 0.5)
        done = float(np.abs(nxt - p).max()) < tolerance if n else True
        p = nxt
        if done:
            break
    return np.asarray(p)
