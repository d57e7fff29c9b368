"""SybilRank and its signed variant."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from benchmarks.graph_reference import sybilscar
from feedbackguard.graph.trust import (
    auc,
    default_iterations,
    signed_sybilrank,
    sybilrank,
    symmetric_adjacency,
)


def _two_regions(attack_edges: int, seed: int = 0) -> tuple[object, np.ndarray]:
    honest = nx.powerlaw_cluster_graph(400, 4, 0.3, seed=seed)
    sybil = nx.powerlaw_cluster_graph(100, 4, 0.3, seed=seed + 1)
    rng = np.random.default_rng(seed)
    edges = np.concatenate(
        [
            np.array(honest.edges()),
            np.array(sybil.edges()) + 400,
            np.stack([rng.integers(0, 400, attack_edges), rng.integers(400, 500, attack_edges)], 1),
        ]
    )
    is_sybil = np.zeros(500, dtype=bool)
    is_sybil[400:] = True
    return symmetric_adjacency(edges[:, 0], edges[:, 1], 500), is_sybil


def test_sybilrank_ranks_planted_sybil_region_below_honest() -> None:
    adj, is_sybil = _two_regions(20)
    trust = sybilrank(adj, np.arange(0, 400, 40))
    assert auc(-trust, is_sybil) > 0.97


def test_sybilrank_needs_a_seed() -> None:
    adj, _ = _two_regions(20)
    with pytest.raises(ValueError, match="seed"):
        sybilrank(adj, [])


def test_default_iterations_grow_with_log_n() -> None:
    assert default_iterations(1024) == 10
    assert default_iterations(1025) == 11


def test_signed_variant_uses_negative_seeds() -> None:
    adj, is_sybil = _two_regions(400)
    trusted = np.arange(0, 400, 40)
    rejected = np.arange(400, 500, 10)
    unlabelled = np.ones(500, dtype=bool)
    unlabelled[trusted] = unlabelled[rejected] = False
    plain = auc(-sybilrank(adj, trusted, 3)[unlabelled], is_sybil[unlabelled])
    signed = auc(signed_sybilrank(adj, trusted, rejected, 3)[unlabelled], is_sybil[unlabelled])
    assert signed > plain + 0.05


def test_signed_variant_without_rejected_is_minus_sybilrank() -> None:
    adj, _ = _two_regions(20)
    seeds = np.arange(0, 400, 40)
    assert np.allclose(signed_sybilrank(adj, seeds, []), -sybilrank(adj, seeds))


def test_sybilscar_puts_sybils_above_honest() -> None:
    adj, is_sybil = _two_regions(100)
    p = sybilscar(
        adj,
        np.arange(0, 400, 40),
        np.arange(400, 500, 10),
        homophily=0.9,
        prior=0.5,
        max_iterations=50,
        tolerance=1e-6,
    )
    assert auc(p, is_sybil) > 0.9


def test_symmetric_adjacency_drops_self_loops_and_sums_duplicates() -> None:
    adj = symmetric_adjacency([0, 0, 1, 2], [1, 1, 0, 2], 3)
    assert adj[0, 1] == 3
    assert adj[1, 0] == 3
    assert adj[2, 2] == 0
