"""Sybil ranking: our SybilRank and signed variant vs BrightID's anti-sybil SybilRank.

Honest region: networkx powerlaw_cluster_graph(10000, 5, 0.3); Sybil region:
powerlaw_cluster_graph(1000, 5, 0.3); 100 / 1,000 / 5,000 random attack edges;
100 random honest seeds; the signed variants also get 100 random Sybils as
moderator-rejected negative seeds. AUC (Sybil scored as more suspicious) over the
nodes that are neither seed kind, so every method is judged on the same nodes.

The peer (it pins networkx==2.1, which does not import on Python 3.11) runs in a
separate interpreter with networkx 3:

    python3.11 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install networkx requests
    /tmp/peer-venv/bin/pip install --no-deps anti-sybil

    python benchmarks/graph_sybil.py [--peer-python /tmp/peer-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import networkx as nx
import numpy as np
from graph_reference import sybilscar

from feedbackguard.graph.trust import (
    auc,
    default_iterations,
    signed_sybilrank,
    sybilrank,
    symmetric_adjacency,
)

ATTACK_EDGES = (100, 1_000, 5_000)
N_HONEST, N_SYBIL, N_SEEDS = 10_000, 1_000, 100
DEFAULT_PEER = "/tmp/peer-venv/bin/python"
INSTALL_HINT = (
    "python3.11 -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install networkx requests "
    "&& /tmp/peer-venv/bin/pip install --no-deps anti-sybil"
)
REPEATS = 5

PEER_SCRIPT = """
import json, sys, time
import networkx as nx
import numpy as np
from anti_sybil.algorithms import SybilRank
from anti_sybil.utils import Node
data = np.load(sys.argv[1])
edges, seeds, n = data["edges"], set(data["seeds"].tolist()), int(data["n"])
nodes = [Node(i, "Seed" if i in seeds else "Honest") for i in range(n)]
g = nx.Graph()
g.add_nodes_from(nodes)
g.add_edges_from((nodes[a], nodes[b]) for a, b in edges.tolist())
start = time.perf_counter()
SybilRank(g).rank()
elapsed = time.perf_counter() - start
with open(sys.argv[2], "w") as fh:
    json.dump({"raw_rank": [float(node.raw_rank) for node in nodes], "time_s": elapsed}, fh)
"""


def build(attack: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    honest = nx.powerlaw_cluster_graph(N_HONEST, 5, 0.3, seed=seed)
    sybil = nx.powerlaw_cluster_graph(N_SYBIL, 5, 0.3, seed=seed + 1)
    rng = np.random.default_rng(seed + attack)
    attack_edges = np.stack(
        [rng.integers(0, N_HONEST, attack), rng.integers(N_HONEST, N_HONEST + N_SYBIL, attack)],
        axis=1,
    )
    edges = np.concatenate(
        [np.array(honest.edges()), np.array(sybil.edges()) + N_HONEST, attack_edges]
    )
    trusted = rng.choice(N_HONEST, N_SEEDS, replace=False)
    rejected = N_HONEST + rng.choice(N_SYBIL, N_SEEDS, replace=False)
    is_sybil = np.zeros(N_HONEST + N_SYBIL, dtype=bool)
    is_sybil[N_HONEST:] = True
    return edges, trusted, rejected, is_sybil


def peer(
    edges: np.ndarray, trusted: np.ndarray, python: str | None
) -> tuple[np.ndarray | None, float | None, str | None]:
    if python is None or not Path(python).exists():
        return None, None, f"peer interpreter not found; install with: {INSTALL_HINT}"
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = (os.path.join(tmp, n) for n in ("d.npz", "o.json", "p.py"))
        Path(script).write_text(PEER_SCRIPT)
        np.savez(data, edges=edges, seeds=trusted, n=N_HONEST + N_SYBIL)
        proc = subprocess.run(
            [python, script, data, out], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return None, None, f"peer failed: {proc.stderr.strip().splitlines()[-1:]}"
        res = json.loads(Path(out).read_text())
    return np.asarray(res["raw_rank"]), float(res["time_s"]), None


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """Result and best-of-REPEATS wall time of fn()."""
    best = float("inf")
    out = fn()
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return np.asarray(out), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer-python", default=os.environ.get("FG_PEER_PYTHON", DEFAULT_PEER))
    args = parser.parse_args()
    res: dict[str, dict[str, float | None]] = {
        k: {}
        for k in (
            "sybilrank_auc",
            "signed_auc",
            "sybilscar_auc",
            "sybilrank_log10_auc",
            "peer_auc",
            "sybilrank_time_s",
            "signed_time_s",
            "sybilscar_time_s",
            "peer_time_s",
        )
    }
    note = None
    for attack in ATTACK_EDGES:
        edges, trusted, rejected, is_sybil = build(attack, seed=1)
        n = N_HONEST + N_SYBIL
        judged = np.ones(n, dtype=bool)
        judged[trusted] = False
        judged[rejected] = False
        adj = symmetric_adjacency(edges[:, 0], edges[:, 1], n)
        trust, t_rank = timed(partial(sybilrank, adj, trusted))
        signed, t_signed = timed(partial(signed_sybilrank, adj, trusted, rejected))
        scar, t_scar = timed(
            partial(
                sybilscar,
                adj,
                trusted,
                rejected,
                homophily=0.9,
                prior=0.5,
                max_iterations=60,
                tolerance=1e-6,
            )
        )
        # The iteration count the peer uses (ceil(log10 n)), for a like-for-like row.
        short = sybilrank(adj, trusted, max(3, int(np.ceil(np.log10(n)))))
        key = str(attack)
        res["sybilrank_auc"][key] = round(auc(-trust[judged], is_sybil[judged]), 4)
        res["signed_auc"][key] = round(auc(signed[judged], is_sybil[judged]), 4)
        res["sybilscar_auc"][key] = round(auc(scar[judged], is_sybil[judged]), 4)
        res["sybilrank_log10_auc"][key] = round(auc(-short[judged], is_sybil[judged]), 4)
        res["sybilrank_time_s"][key] = round(t_rank, 5)
        res["signed_time_s"][key] = round(t_signed, 5)
        res["sybilscar_time_s"][key] = round(t_scar, 5)
        raw, t_peer, note = peer(edges, trusted, args.peer_python)
        res["peer_auc"][key] = (
            None if raw is None else round(auc(-raw[judged], is_sybil[judged]), 4)
        )
        res["peer_time_s"][key] = None if t_peer is None else round(t_peer, 3)
        print(
            f"attack edges {attack}: SybilRank {res['sybilrank_auc'][key]} ({t_rank * 1000:.1f} ms)"
            f", signed {res['signed_auc'][key]}, SybilSCAR-like {res['sybilscar_auc'][key]}, "
            f"SybilRank at log10 steps {res['sybilrank_log10_auc'][key]}, "
            f"peer {res['peer_auc'][key]} ({t_peer} s)",
            flush=True,
        )
    out: dict[str, object] = dict(res)
    out["iterations"] = default_iterations(N_HONEST + N_SYBIL)
    out["peer_note"] = note
    out["load_avg_1m"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
