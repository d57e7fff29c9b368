"""FRAUDAR-style dense-block detection."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks.graph_reference import peel_exact, peel_naive
from feedbackguard.graph.dense import (
    DenseBlock,
    detect_dense_blocks,
    fraudar,
    peel,
    weighted,
)
from feedbackguard.graph.params import DensePolicy
from feedbackguard.graph.window import EventWindow

DAY = 86400.0


def _honest(
    rng: np.random.Generator, n_acc: int, n_item: int, n_edges: int
) -> tuple[np.ndarray, np.ndarray]:
    acc = rng.choice(n_acc, n_edges, p=_zipf(rng, n_acc))
    itm = rng.choice(n_item, n_edges, p=_zipf(rng, n_item))
    return acc, itm


def _zipf(rng: np.random.Generator, n: int) -> np.ndarray:
    w = rng.pareto(1.5, n) + 1
    return np.asarray(w / w.sum())


def _planted(
    seed: int, density: float, camouflage: bool, span_s: float
) -> tuple[EventWindow, set[int], set[int]]:
    rng = np.random.default_rng(seed)
    acc, itm = _honest(rng, 2000, 1000, 12000)
    t = rng.uniform(0, 30 * DAY, acc.size)
    f_acc = np.arange(2000, 2030)
    f_itm = rng.choice(1000, 30, replace=False)
    mask = rng.random((30, 30)) < density
    r, c = np.nonzero(mask)
    parts = [(acc, itm, t), (f_acc[r], f_itm[c], 10 * DAY + rng.uniform(0, span_s, r.size))]
    if camouflage:
        cam_acc = np.repeat(f_acc, mask.sum(axis=1))
        parts.append(
            (cam_acc, rng.choice(1000, cam_acc.size), rng.uniform(0, 30 * DAY, cam_acc.size))
        )
    a = np.concatenate([p[0] for p in parts])
    i = np.concatenate([p[1] for p in parts])
    tt = np.concatenate([p[2] for p in parts])
    return EventWindow.from_arrays(a, i, tt), set(f_acc.tolist()), set(f_itm.tolist())


def _found(blocks: list[DenseBlock], truth_acc: set[int]) -> tuple[float, float]:
    got = set().union(*(set(b.accounts.tolist()) for b in blocks)) if blocks else set()
    if not got:
        return 0.0, 0.0
    hit = len(got & truth_acc)
    return hit / len(got), hit / len(truth_acc)


def test_planted_dense_block_is_found() -> None:
    w, acc, _ = _planted(1, 0.5, camouflage=False, span_s=30 * DAY)
    precision, recall = _found(detect_dense_blocks(w, DensePolicy(use_time=False)), acc)
    assert precision >= 0.9
    assert recall >= 0.9


def test_camouflaged_block_is_found() -> None:
    w, acc, _ = _planted(2, 0.5, camouflage=True, span_s=30 * DAY)
    precision, recall = _found(detect_dense_blocks(w, DensePolicy(use_time=False)), acc)
    assert precision >= 0.9
    assert recall >= 0.9


def test_sparse_block_concentrated_in_time_is_found_only_with_time() -> None:
    w, acc, _ = _planted(3, 0.25, camouflage=True, span_s=3 * 3600)
    assert _found(detect_dense_blocks(w, DensePolicy(use_time=True)), acc)[1] >= 0.9
    assert _found(detect_dense_blocks(w, DensePolicy(use_time=False)), acc)[1] < 0.9


def test_honest_power_law_graph_has_no_block() -> None:
    rng = np.random.default_rng(4)
    acc, itm = _honest(rng, 2000, 1000, 12000)
    w = EventWindow.from_arrays(acc, itm, rng.uniform(0, 30 * DAY, acc.size))
    assert detect_dense_blocks(w, DensePolicy()) == []


def test_batched_exact_and_naive_peeling_agree_on_the_densest_block() -> None:
    rng = np.random.default_rng(5)
    m = sp.random(80, 60, density=0.05, random_state=rng, format="csr")
    m.data[:] = 1
    dense = sp.lil_matrix(m)
    dense[:10, :10] = 1
    w = weighted(sp.csr_matrix(dense), 5.0)
    naive, exact, batched = peel_naive(w), peel_exact(w), peel(w, 0.0)
    assert set(exact.rows.tolist()) == set(naive.rows.tolist())
    assert exact.density == naive.density
    assert set(range(10)) <= set(batched.rows.tolist())
    assert abs(batched.density - exact.density) / exact.density < 0.05


def test_fraudar_log_weights_prefer_the_block_over_a_popular_column() -> None:
    m = sp.lil_matrix((50, 20))
    m[:, 0] = 1  # every account on one popular item
    m[40:50, 10:20] = 1
    found = fraudar(sp.csr_matrix(m))
    assert set(found.rows.tolist()) == set(range(40, 50))
