"""The whole-window graph analysis: every detector, trust propagation, per-account risk.

`analyse` is a pure function of an `EventWindow` and a `GraphPolicy` (plus the
moderators' trusted and rejected accounts): the analysis job runs it periodically and
caches the result; replaying the same events gives the same answer. Each finding
becomes a reason with a stable code, and each cluster keeps the evidence a moderator
needs: its members, the items they share and the timeline of their activity.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

from feedbackguard.graph.dense import DenseBlock, detect_dense_blocks
from feedbackguard.graph.infrastructure import InfrastructureCluster, detect_infrastructure
from feedbackguard.graph.lockstep import LockstepGroup, SimilarPairs, detect_lockstep
from feedbackguard.graph.params import GraphPolicy
from feedbackguard.graph.sets import unique
from feedbackguard.graph.trust import default_iterations, sybilrank, symmetric_adjacency
from feedbackguard.graph.window import MISSING, EventWindow, FloatArray, IntArray
from feedbackguard.reasons import Reason

LOCKSTEP = "coordination.lockstep"
DENSE_BLOCK = "coordination.dense_block"
INFRASTRUCTURE = "sybil.infrastructure"
TRUST = "sybil.trust"
CLUSTER = "sybil.cluster"
CODES = (LOCKSTEP, DENSE_BLOCK, INFRASTRUCTURE, TRUST, CLUSTER)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timeline:
    """When a cluster acted: first and last event and event counts per bucket."""

    start: float
    end: float
    bucket_s: float
    counts: tuple[tuple[float, int], ...]
    """(bucket start, events) for every non-empty bucket, in time order."""


@dataclass(frozen=True, slots=True)
class Cluster:
    """One finding about a group of accounts, with its evidence."""

    cluster_id: str
    code: str
    score: float
    detail: str
    members: tuple[str, ...]
    items: tuple[str, ...]
    timeline: Timeline
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountRisk:
    account_id: str
    risk: float
    reasons: tuple[Reason, ...]
    clusters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Risky accounts (risk > 0 only), clusters, and per-account risk by window code."""

    accounts: dict[str, AccountRisk]
    clusters: tuple[Cluster, ...]
    risk: FloatArray
    """Risk per account code of the window (0 for clean accounts)."""
    timings_s: dict[str, float]
    cohorts: tuple[IntArray, ...] = ()
    """Account codes of every group a detector found acting as one (lockstep groups
    flagged or not, dense blocks, infrastructure clusters): independence weights."""


@dataclass
class _Findings:
    """Per-account best score, its detail and group, and clusters per reason code,
    while combining."""

    n: int
    names: tuple[str, ...] = ()
    first_seen: FloatArray = field(default_factory=lambda: np.zeros(0))
    score: dict[str, FloatArray] = field(default_factory=dict)
    detail: dict[str, dict[int, str]] = field(default_factory=dict)
    group: dict[str, dict[int, str]] = field(default_factory=dict)
    clusters: dict[int, list[str]] = field(default_factory=dict)

    def add(self, code: str, members: IntArray, score: float, detail: str, cid: str) -> None:
        current = self.score.setdefault(code, np.zeros(self.n))
        details = self.detail.setdefault(code, {})
        groups = self.group.setdefault(code, {})
        group = self.group_id(code, members)
        better = members[current[members] < score]
        current[better] = score
        for m in better.tolist():
            details[m] = detail
            groups[m] = group
        for m in members.tolist():
            self.clusters.setdefault(m, []).append(cid)

    def group_id(self, code: str, members: IntArray) -> str:
        """A group's id for its reasons (`Reason.group`): the code and a digest of its
        earliest member (first seen in the window, then by name). Cluster ids number
        a run's findings in order; this stays the same from one run to the next while
        the group grows."""
        if members.size == 0 or not self.names:
            return ""
        first = min(members.tolist(), key=lambda m: (self.first_seen[m], self.names[m]))
        digest = hashlib.blake2b(self.names[first].encode(), digest_size=6).hexdigest()
        return f"{code}:{digest}"


def _timed(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    timings[name] = time.perf_counter() - start
    return out


def _timeline(window: EventWindow, events: IntArray, bucket_s: float) -> Timeline:
    if events.size == 0:
        return Timeline(0.0, 0.0, bucket_s, ())
    t = window.time[events]
    buckets, counts = np.unique(np.floor(t / bucket_s), return_counts=True)
    return Timeline(
        start=float(t.min()),
        end=float(t.max()),
        bucket_s=bucket_s,
        counts=tuple((float(b * bucket_s), int(c)) for b, c in zip(buckets, counts, strict=True)),
    )


def _top_items(window: EventWindow, events: IntArray, limit: int) -> tuple[str, ...]:
    if events.size == 0:
        return ()
    items, counts = np.unique(window.item[events], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:limit]
    return tuple(window.item_ids[i] for i in items[order])


def _names(window: EventWindow, accounts: IntArray) -> tuple[str, ...]:
    return tuple(window.account_ids[a] for a in accounts.tolist())


def _hours(start: float, end: float) -> str:
    """A span as people read it: seconds, minutes, hours or days (never "0.0 h")."""
    return span_text(end - start)


def span_text(seconds: float) -> str:
    """`seconds` in the largest unit that keeps it at least 1 (whole seconds under a
    minute, at least 1: "within 1 s" is true of anything shorter)."""
    s = max(0.0, seconds)
    if s < 60:
        return f"{max(1, round(s))} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _lockstep_clusters(
    window: EventWindow, groups: list[LockstepGroup], policy: GraphPolicy, found: _Findings
) -> list[tuple[Cluster, IntArray, float]]:
    out = []
    for k, g in enumerate(g for g in groups if g.flagged):
        cid = f"lockstep-{k}"
        detail = (
            f"{g.members.size} accounts acted in lockstep on {g.items.size} items within "
            f"{_hours(g.start, g.end)} (synchrony {g.synchrony:.2f}, young {g.young_share:.0%})"
        )
        score = policy.combine.lockstep_weight * g.score
        found.add(LOCKSTEP, g.members, score, detail, cid)
        cluster = Cluster(
            cluster_id=cid,
            code=LOCKSTEP,
            score=score,
            detail=detail,
            members=_names(window, g.members),
            items=tuple(window.item_ids[i] for i in g.items[: policy.evidence_max_items]),
            timeline=_timeline(window, g.events, policy.timeline_bucket_s),
            stats={
                "size": float(g.members.size),
                "pairs": float(g.pairs),
                "density": g.density,
                "synchrony": g.synchrony,
                "value_agreement": g.value_agreement,
                "young_share": g.young_share,
                "infrastructure_share": g.infrastructure_share,
            },
        )
        out.append((cluster, g.members, score))
    return out


def _dense_clusters(
    window: EventWindow,
    blocks: list[DenseBlock],
    policy: GraphPolicy,
    found: _Findings,
    young: np.ndarray,
) -> list[tuple[Cluster, IntArray, float]]:
    out = []
    for k, b in enumerate(blocks):
        cid = f"dense-{k}"
        detail = (
            f"{b.accounts.size} accounts x {b.items.size} items block with {b.edges} actions, "
            f"{b.lift:.1f}x what their activity predicts, within {_hours(b.start, b.end)}"
        )
        score = policy.combine.dense_weight * b.strength
        found.add(DENSE_BLOCK, b.accounts, score, detail, cid)
        cluster = Cluster(
            cluster_id=cid,
            code=DENSE_BLOCK,
            score=score,
            detail=detail,
            members=_names(window, b.accounts),
            items=_top_items(window, b.events, policy.evidence_max_items),
            timeline=_timeline(window, b.events, policy.timeline_bucket_s),
            stats={
                "accounts": float(b.accounts.size),
                "items": float(b.items.size),
                "edges": float(b.edges),
                "expected_edges": b.expected_edges,
                "lift": b.lift,
                "density": b.density,
                "young_share": float(young[b.accounts].mean()),
            },
        )
        out.append((cluster, b.accounts, score))
    return out


def _infra_clusters(
    window: EventWindow,
    clusters: list[InfrastructureCluster],
    policy: GraphPolicy,
    found: _Findings,
) -> list[tuple[Cluster, IntArray, float]]:
    out = []
    member_mask = np.zeros(window.n_accounts, dtype=bool)
    for k, c in enumerate(clusters):
        cid = f"infra-{k}"
        if c.reason == "young_excess":
            detail = (
                f"{c.young_on_key} young accounts on {c.kind} {c.label} "
                f"({c.accounts_on_key} accounts in all, {c.expected_young:.1f} young expected)"
            )
        else:
            detail = f"{c.accounts_on_key} accounts on one device {c.label}"
        score = policy.combine.infrastructure_weight * c.score
        found.add(INFRASTRUCTURE, c.members, score, detail, cid)
        member_mask[:] = False
        member_mask[c.members] = True
        events = np.flatnonzero(member_mask[window.account])
        cluster = Cluster(
            cluster_id=cid,
            code=INFRASTRUCTURE,
            score=score,
            detail=detail,
            members=_names(window, c.members),
            items=_top_items(window, events, policy.evidence_max_items),
            timeline=_timeline(window, events, policy.timeline_bucket_s),
            stats={
                "accounts_on_key": float(c.accounts_on_key),
                "young_on_key": float(c.young_on_key),
                "expected_young": c.expected_young,
            },
        )
        out.append((cluster, c.members, score))
    return out


def _ids(window: EventWindow, accounts: Iterable[str]) -> IntArray:
    index = {a: i for i, a in enumerate(window.account_ids)}
    return np.asarray(sorted({index[a] for a in accounts if a in index}), dtype=np.int64)


def trust_graph(window: EventWindow, pairs: SimilarPairs | None = None) -> sp.csr_matrix:
    """The combined account graph trust flows over, and its node count.

    Nodes: accounts, then items, subnets and devices; edges: an account acted on an
    item / from a subnet / device (once each), plus lockstep similarity edges.
    """
    a_n, i_n = window.n_accounts, window.n_items
    s_n = len(window.subnet_ids) or (int(window.subnet.max()) + 1 if window.n_events else 0)
    d_n = len(window.device_ids) or (int(window.device.max()) + 1 if window.n_events else 0)
    has_s = window.subnet != MISSING
    src = [window.account, window.account[has_s]]
    dst = [a_n + window.item, a_n + i_n + window.subnet[has_s]]
    has_d = window.device != MISSING
    src.append(window.account[has_d])
    dst.append(a_n + i_n + s_n + window.device[has_d])
    if pairs is not None and pairs.a.size:
        src.append(pairs.a)
        dst.append(pairs.b)
    n = a_n + i_n + s_n + d_n
    s = np.concatenate(src)
    d = np.concatenate(dst)
    # Once per (node, node): repeated actions do not buy more trust.
    key = unique(s * n + d)
    return symmetric_adjacency(key // n, key % n, n)


def _trust(
    window: EventWindow,
    policy: GraphPolicy,
    pairs: SimilarPairs,
    trusted: IntArray,
    rejected: IntArray,
    found: _Findings,
) -> None:
    adj = trust_graph(window, pairs)
    a_n = window.n_accounts
    # The graph is bipartite (accounts | items, subnets, devices) apart from lockstep
    # edges, so trust changes sides at every step: an odd count leaves none on accounts.
    steps = policy.trust.iterations or default_iterations(adj.shape[0])
    iterations = steps + steps % 2
    trust = sybilrank(adj, trusted, iterations)[:a_n]
    strength = np.zeros(a_n)
    active = trust > 0
    reference = float(np.median(trust[active])) if active.any() else 0.0
    if reference > 0:
        low = policy.trust.low_trust_ratio * reference
        strength = np.clip(1.0 - trust / low, 0.0, 1.0)
    if rejected.size:
        distrust = sybilrank(adj, rejected, iterations)[:a_n]
        total = distrust + trust
        share = np.divide(distrust, total, out=np.zeros(a_n), where=total > 0)
        closer = distrust >= policy.trust.min_distrust_ratio * trust
        strength = np.maximum(strength, np.where(closer & (total > 0), share, 0.0))
    strength[trusted] = 0.0
    flagged = np.flatnonzero(strength > 0)
    if flagged.size == 0:
        return
    scores = policy.combine.trust_weight * strength[flagged]
    current = found.score.setdefault(TRUST, np.zeros(a_n))
    current[flagged] = scores
    details = found.detail.setdefault(TRUST, {})
    for a in flagged.tolist():
        details[a] = (
            f"trust {trust[a] / reference if reference else 0:.3f} of the median account's"
            + (
                f", distrust {distrust[a] / trust[a] if trust[a] > 0 else float('inf'):.1f}x trust"
                if rejected.size
                else ""
            )
        )


def _corroborate(
    window: EventWindow,
    policy: GraphPolicy,
    findings: list[tuple[Cluster, IntArray, float]],
    found: _Findings,
) -> list[Cluster]:
    """Clusters from two different detectors that share most members: sybil.cluster."""
    out: list[Cluster] = []
    for i, (ci, mi, si) in enumerate(findings):
        for cj, mj, sj in findings[i + 1 :]:
            if ci.code == cj.code:
                continue
            common = np.intersect1d(mi, mj)
            if common.size < policy.combine.corroboration_overlap * min(mi.size, mj.size):
                continue
            score = min(1.0, max(si, sj) + policy.combine.corroboration_bonus * min(si, sj))
            cid = f"cluster-{len(out)}"
            detail = f"{common.size} accounts found by both {ci.cluster_id} and {cj.cluster_id}"
            found.add(CLUSTER, common, score, detail, cid)
            out.append(
                Cluster(
                    cluster_id=cid,
                    code=CLUSTER,
                    score=score,
                    detail=detail,
                    members=_names(window, common),
                    items=tuple(dict.fromkeys(ci.items + cj.items))[: policy.evidence_max_items],
                    timeline=ci.timeline,
                    stats={"overlap": float(common.size), "sources": 2.0},
                )
            )
    return out


def analyse(
    window: EventWindow,
    policy: GraphPolicy | None = None,
    *,
    trusted: Sequence[str] = (),
    rejected: Sequence[str] = (),
) -> AnalysisResult:
    """Run every graph detector on `window` and combine them into per-account risk.

    `trusted` are account ids moderators vouch for (SybilRank seeds) and `rejected`
    account ids moderators rejected (negative seeds of the signed variant); ids not
    in the window are ignored, and trust propagation is skipped without trusted
    seeds. Risk is the noisy-OR of an account's best score per reason code.
    """
    pol = policy or GraphPolicy()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    young = window.young(pol.young_account_age_s)
    found = _Findings(window.n_accounts, window.account_ids, window.first_seen())
    groups, pairs = _timed(
        timings, "lockstep", lambda: detect_lockstep(window, pol.lockstep, young)
    )
    blocks = _timed(timings, "dense", lambda: detect_dense_blocks(window, pol.dense))
    infra = _timed(
        timings, "infrastructure", lambda: detect_infrastructure(window, pol.infrastructure, young)
    )
    findings = (
        _lockstep_clusters(window, groups, pol, found)
        + _dense_clusters(window, blocks, pol, found, young)
        + _infra_clusters(window, infra, pol, found)
    )
    trusted_idx = _ids(window, trusted)
    rejected_idx = _ids(window, rejected)
    if trusted_idx.size:
        _timed(
            timings,
            "trust",
            lambda: _trust(window, pol, pairs, trusted_idx, rejected_idx, found),
        )
    corroborated = _corroborate(window, pol, findings, found)
    keep = np.ones(window.n_accounts)
    for scores in found.score.values():
        keep *= 1.0 - scores
    risk = 1.0 - keep
    accounts: dict[str, AccountRisk] = {}
    for a in np.flatnonzero(risk > 0).tolist():
        reasons = tuple(
            Reason(
                code,
                found.detail[code].get(a, ""),
                float(found.score[code][a]),
                found.group.get(code, {}).get(a, ""),
            )
            for code in CODES
            if code in found.score and found.score[code][a] > 0
        )
        name = window.account_ids[a]
        accounts[name] = AccountRisk(
            account_id=name,
            risk=float(risk[a]),
            reasons=tuple(sorted(reasons, key=lambda r: -r.score)),
            clusters=tuple(found.clusters.get(a, ())),
        )
    timings["total"] = time.perf_counter() - started
    return AnalysisResult(
        accounts=accounts,
        clusters=tuple(c for c, _, _ in findings) + tuple(corroborated),
        risk=risk,
        timings_s=timings,
        cohorts=(
            *(g.members for g in groups),
            *(b.accounts for b in blocks),
            *(c.members for c in infra),
        ),
    )
