"""Drift monitor: the label distribution of admitted (and pending, i.e. not refused)
feedback of the last `recent_s` against the `reference_s` before it, per namespace and
per item, by the population stability index and a chi-square test (scipy).

A shift with PSI >= `psi_alert` and p <= `max_p_value` raises an alert: an audit entry
and a capped Redis list a dashboard reads (`alerts`); the same scope alerts again only
once a further `recent_s` has passed. When policy says so (`drift.lockdown`) a
namespace-level alert also locks the namespace down (`feedbackguard.policy.lockdown`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import redis
from scipy import stats

from feedbackguard import audit, keys
from feedbackguard.consistency.recent import Recent
from feedbackguard.policy import Drift, lockdown

COUNTED = frozenset({"admitted", "pending"})
ALERTS_MAX = 1000
_EPS = 1e-4


@dataclass(frozen=True)
class Shift:
    scope: str  # "namespace" or "item:<id>"
    psi: float
    p_value: float
    reference: dict[str, int]
    recent: dict[str, int]


def psi(reference: Counter[str], recent: Counter[str]) -> float:
    """Population stability index of two label count tables (smoothed)."""
    labels = sorted(set(reference) | set(recent))
    q = np.array([reference[v] for v in labels], dtype=np.float64)
    p = np.array([recent[v] for v in labels], dtype=np.float64)
    q = np.maximum(q / max(q.sum(), 1.0), _EPS)
    p = np.maximum(p / max(p.sum(), 1.0), _EPS)
    return float(np.sum((p - q) * np.log(p / q)))


def chi2_p(reference: Counter[str], recent: Counter[str]) -> float:
    labels = sorted(set(reference) | set(recent))
    if len(labels) < 2:
        return 1.0
    table = np.array([[reference[v] for v in labels], [recent[v] for v in labels]])
    return float(stats.chi2_contingency(table)[1])


def shifts(window: Recent, now: float, policy: Drift) -> list[Shift]:
    """The scopes whose recent label distribution moved, per the module's test."""
    if not window.statuses or len(window) == 0:
        return []
    counted = np.array([s in COUNTED for s in window.statuses], dtype=bool)
    recent = counted & (window.time > now - policy.recent_s)
    reference = counted & ~recent & (window.time > now - policy.recent_s - policy.reference_s)
    out: list[Shift] = []
    scopes: list[tuple[str, Any]] = [("namespace", np.ones(len(window), dtype=bool))]
    items = np.asarray(window.items, dtype=np.str_)
    busy = Counter(items[recent].tolist())
    for item, n in busy.items():
        if n >= policy.min_item_events:
            scopes.append((f"item:{item}", items == item))
    for scope, mask in scopes:
        minimum = policy.min_events if scope == "namespace" else policy.min_item_events
        ref = Counter(np.asarray(window.labels)[reference & mask].tolist())
        new = Counter(np.asarray(window.labels)[recent & mask].tolist())
        if sum(ref.values()) < minimum or sum(new.values()) < minimum:
            continue
        index, p = psi(ref, new), chi2_p(ref, new)
        if index >= policy.psi_alert and p <= policy.max_p_value:
            out.append(Shift(scope, round(index, 4), p, dict(ref), dict(new)))
    return out


def alert(
    r: redis.Redis[bytes], namespace: str, found: list[Shift], now: float, policy: Drift
) -> list[Shift]:
    """Raise alerts for the shifts not alerted within `recent_s`; lock down when the
    policy says so. Returns the shifts alerted now."""
    if not found:
        return []
    last = r.hmget(keys.drift_last_alert(namespace), [s.scope for s in found])
    fresh = [
        s
        for s, at in zip(found, last, strict=True)
        if at is None or now - float(at) >= policy.recent_s
    ]
    if not fresh:
        return []
    pipe = r.pipeline(transaction=True)
    for shift in fresh:
        entry = {"namespace": namespace, "at": now, **shift.__dict__}
        pipe.lpush(keys.drift_alerts(namespace), orjson.dumps(entry))
        audit.record(r, "drift", "drift.alert", **entry)  # own slot: before the MULTI
    pipe.ltrim(keys.drift_alerts(namespace), 0, ALERTS_MAX - 1)
    pipe.hset(keys.drift_last_alert(namespace), mapping={s.scope: repr(now) for s in fresh})
    pipe.execute()
    if (
        policy.lockdown
        and any(s.scope == "namespace" for s in fresh)
        and not lockdown.is_locked(r, namespace)
    ):
        shift = next(s for s in fresh if s.scope == "namespace")
        lockdown.set_lockdown(
            r, namespace, True, "drift", f"label distribution shifted (PSI {shift.psi:.2f})"
        )
    return fresh


def alerts(r: redis.Redis[bytes], namespace: str, count: int = 100) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in r.lrange(keys.drift_alerts(namespace), 0, count - 1)]
