"""Graph detection of Sybil swarms and coordinated brigades.

Only the graph of who acts with whom gives away accounts that each stay under every
per-account limit. `analyse(EventWindow, GraphPolicy)` runs every detector on one
window of events and returns per-account risk with reason codes and per-cluster
evidence; the modules hold one detector each:

- `window`: the columnar event window the detectors read;
- `lockstep`: synchronised action (coordination.lockstep);
- `dense`: FRAUDAR-style dense blocks, time-aware (coordination.dense_block);
- `infrastructure`: young accounts on shared IPs / subnets / devices (sybil.infrastructure);
- `trust`: SybilRank and its signed variant (sybil.trust);
- `reports`: report bursts from correlated cohorts, scored by harm (reports.correlated);
- `independence`: each account's independence weight, published for the consensus;
- `analysis`: combining, corroboration (sybil.cluster) and evidence.
"""

from __future__ import annotations

from feedbackguard.graph.analysis import (
    AccountRisk,
    AnalysisResult,
    Cluster,
    Timeline,
    analyse,
)
from feedbackguard.graph.params import GraphPolicy
from feedbackguard.graph.window import EventWindow

__all__ = [
    "AccountRisk",
    "AnalysisResult",
    "Cluster",
    "EventWindow",
    "GraphPolicy",
    "Timeline",
    "analyse",
]
