"""Infrastructure clusters: many young accounts behind a few IPs, subnets or devices.

A swarm operator registers accounts in bulk from the machines and address blocks they
control. The same picture (many accounts on one address) is also what a campus or a
mobile carrier's NAT looks like, so a key is only judged by its *young* accounts, and
only against an allowance proportional to its size: a NAT with 500 accounts is
allowed as many recent sign-ups as 500 accounts of the whole window would have.
Devices get a fixed cap instead, since no honest device carries dozens of accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from feedbackguard.graph.params import InfrastructurePolicy
from feedbackguard.graph.sets import unique
from feedbackguard.graph.window import MISSING, BoolArray, EventWindow, IntArray

KeyKind = Literal["ip", "subnet", "device"]
KINDS: tuple[KeyKind, ...] = ("ip", "subnet", "device")


@dataclass(frozen=True, eq=False)
class InfrastructureCluster:
    """Accounts suspiciously concentrated on one ip / subnet / device."""

    kind: KeyKind
    key: int
    """Code of the ip / subnet / device in the window."""
    label: str
    members: IntArray
    accounts_on_key: int
    young_on_key: int
    expected_young: float
    """Young accounts the key's size predicts from the window's overall young share."""
    start: float
    end: float
    score: float
    reason: Literal["young_excess", "device_overload"]


def _codes(window: EventWindow, kind: KeyKind) -> IntArray:
    return {"ip": window.ip, "subnet": window.subnet, "device": window.device}[kind]


def _labels(window: EventWindow, kind: KeyKind) -> tuple[str, ...]:
    return {"ip": window.ip_ids, "subnet": window.subnet_ids, "device": window.device_ids}[kind]


def _key_accounts(codes: IntArray, account: IntArray, n_accounts: int) -> tuple[IntArray, IntArray]:
    """Distinct (key, account) pairs among events that carry the key."""
    has = codes != MISSING
    if not has.any():
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    pairs = unique(codes[has] * n_accounts + account[has])
    return pairs // n_accounts, pairs % n_accounts


def shared_infrastructure(window: EventWindow, members: IntArray) -> float:
    """Share of `members` that share a subnet or device with another member."""
    if members.size < 2:
        return 0.0
    inside = np.zeros(window.n_accounts, dtype=bool)
    inside[members] = True
    sharing = np.zeros(window.n_accounts, dtype=bool)
    for kind in ("subnet", "device"):
        codes = _codes(window, kind)
        sel = inside[window.account] & (codes != MISSING)
        key, acc = _key_accounts(codes[sel], window.account[sel], window.n_accounts)
        if key.size == 0:
            continue
        per_key = np.bincount(key)
        sharing[acc[per_key[key] >= 2]] = True
    return float(sharing[members].mean())


def _score(ratio: float, threshold: float) -> float:
    # 0.5 at the threshold, 1 at four times it: a ratio, judged in logs.
    return min(1.0, 0.5 + 0.25 * math.log2(max(ratio / threshold, 1.0)))


def detect_infrastructure(
    window: EventWindow, policy: InfrastructurePolicy, young: BoolArray
) -> list[InfrastructureCluster]:
    """Keys with an excess of young accounts, and overloaded devices.

    A subnet cluster with exactly the members of an ip cluster inside it is not
    repeated.
    """
    clusters: list[InfrastructureCluster] = []
    seen: set[bytes] = set()
    for kind in KINDS:
        codes = _codes(window, kind)
        key, acc = _key_accounts(codes, window.account, window.n_accounts)
        if key.size == 0:
            continue
        with_key = np.zeros(window.n_accounts, dtype=bool)
        with_key[acc] = True
        base_rate = float(young[with_key].mean())
        n_keys = int(key.max()) + 1
        total = np.bincount(key, minlength=n_keys)
        young_count = np.bincount(key, weights=young[acc], minlength=n_keys)
        expected = total * base_rate
        allowance = policy.young_excess_ratio * np.maximum(expected, 1.0)
        excess = (young_count >= policy.min_young_accounts) & (young_count >= allowance)
        overload = (
            (total > policy.device_max_accounts) if kind == "device" else np.zeros_like(excess)
        )
        for k in np.flatnonzero(excess | overload):
            on_key = acc[key == k]
            if excess[k]:
                members = on_key[young[on_key]]
                score = _score(
                    float(young_count[k] / max(expected[k], 1.0)),
                    float(allowance[k] / max(expected[k], 1.0)),
                )
                why: Literal["young_excess", "device_overload"] = "young_excess"
            else:
                members = on_key
                score = _score(float(total[k]), float(policy.device_max_accounts))
                why = "device_overload"
            if score < policy.min_score:
                continue
            signature = np.sort(members).tobytes()
            if signature in seen:
                continue
            seen.add(signature)
            ev = np.flatnonzero(codes == k)
            times = window.time[ev]
            labels = _labels(window, kind)
            clusters.append(
                InfrastructureCluster(
                    kind=kind,
                    key=int(k),
                    label=labels[k] if k < len(labels) else str(k),
                    members=np.sort(members).astype(np.int64),
                    accounts_on_key=int(total[k]),
                    young_on_key=int(young_count[k]),
                    expected_young=float(expected[k]),
                    start=float(times.min()),
                    end=float(times.max()),
                    score=score,
                    reason=why,
                )
            )
    clusters.sort(key=lambda c: -c.score)
    return clusters
