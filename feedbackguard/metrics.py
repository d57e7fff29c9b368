"""Prometheus metrics, collected from Redis at scrape time.

Workers are many processes on many machines; their counters already live in Redis
(the ledger's per-namespace stats), so the /metrics endpoint reads them when scraped
(a custom `Collector`) instead of keeping per-process counters that would each see
only a slice. Timings (batch latency, analysis duration) and reject reasons go to
small Redis hashes through `observe` and `count_reasons`, which workers call; the
collector turns them into histograms and counters.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from feedbackguard import keys
from feedbackguard.pipeline.namespaces import info, known
from feedbackguard.review import backlog

STATUSES: Final = ("pending", "admitted", "review", "rejected", "quarantined")
TIMINGS: Final = ("batch", "analysis")
BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def observe(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    namespace: str,
    name: str,
    seconds: float,
) -> None:
    """Record one duration of `name` for the namespace: "batch", "analysis" (exported),
    or "analysis:<analyser>" (one analyser's share of a run; read by benchmarks)."""
    key = keys.timing(namespace, name)
    index = bisect.bisect_left(BUCKETS_S, seconds)
    r.hincrby(key, str(index) if index < len(BUCKETS_S) else "inf", 1)
    r.hincrbyfloat(key, "sum", seconds)
    r.hincrby(key, "count", 1)


def count_reasons(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    namespace: str,
    codes: Mapping[str, int],
) -> None:
    """Add decided events per reason code (call once per batch)."""
    for code, n in codes.items():
        r.hincrby(keys.reasons(namespace), code, n)


def _histogram(raw: Mapping[bytes, bytes]) -> tuple[list[tuple[str, float]], float]:
    counts = {k.decode(): float(v) for k, v in raw.items()}
    cumulative, buckets = 0.0, []
    for i, bound in enumerate(BUCKETS_S):
        cumulative += counts.get(str(i), 0.0)
        buckets.append((repr(bound), cumulative))
    cumulative += counts.get("inf", 0.0)
    buckets.append(("+Inf", cumulative))
    return buckets, counts.get("sum", 0.0)


class RedisCollector(Collector):
    """Reads every namespace's counters, depths, lag and timings from Redis (`r`, the
    data plane), and RQ's queue lengths from `rq` (the control plane; default `r`)."""

    def __init__(self, r: redis.Redis[bytes], rq: redis.Redis[bytes] | None = None) -> None:
        self.r = r
        self.rq = r if rq is None else rq

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        namespaces = known(self.r)
        status = GaugeMetricFamily(
            "feedbackguard_events", "Events by current status", labels=["namespace", "status"]
        )
        captured = CounterMetricFamily(
            "feedbackguard_events_captured",
            "Events captured (decided, duplicate, dead, held or still in the inbox)",
            labels=["namespace"],
        )
        decided = CounterMetricFamily(
            "feedbackguard_events_decided", "Events decided", labels=["namespace"]
        )
        reasons = CounterMetricFamily(
            "feedbackguard_reasons",
            "Events rejected, sent to review or quarantined, per reason code",
            labels=["namespace", "reason"],
        )
        depth = GaugeMetricFamily(
            "feedbackguard_queue_depth",
            "Items waiting: inbox (undecided), pending (probation), review, held (late "
            "copies waiting for an operator)",
            labels=["namespace", "queue"],
        )
        lag = GaugeMetricFamily(
            "feedbackguard_inbox_lag_seconds",
            "Age of the oldest undecided inbox entry",
            labels=["namespace"],
        )
        locked = GaugeMetricFamily(
            "feedbackguard_lockdown", "1 while the namespace is locked down", labels=["namespace"]
        )
        review = {
            "cases": GaugeMetricFamily(
                "feedbackguard_review_cases",
                "Open review cases (the backlog)",
                labels=["namespace"],
            ),
            "oldest": GaugeMetricFamily(
                "feedbackguard_review_oldest_case_age_seconds",
                "Event time since the oldest open case's oldest event",
                labels=["namespace"],
            ),
            "decided": GaugeMetricFamily(
                "feedbackguard_review_cases_decided_last_day",
                "Review cases moderators decided in the last 24 hours",
                labels=["namespace"],
            ),
            "over": GaugeMetricFamily(
                "feedbackguard_review_cases_over_budget",
                "Review cases given the safe default (rejected) for lack of review "
                "capacity, not reopened",
                labels=["namespace"],
            ),
        }
        hists = {
            name: HistogramMetricFamily(
                f"feedbackguard_{name}_duration_seconds",
                f"Duration of one {name} run",
                labels=["namespace"],
            )
            for name in TIMINGS
        }
        for ns in namespaces:
            found = info(self.r, ns)
            for s in STATUSES:
                status.add_metric([ns, s], found.stats.get(s, 0))
            total = sum(found.stats.get(k, 0) for k in ("decided", "duplicates", "dead", "held"))
            captured.add_metric([ns], total + found.inbox)
            decided.add_metric([ns], found.stats.get("decided", 0))
            for queue, n in (
                ("inbox", found.inbox),
                ("pending", found.pending),
                ("review", found.review),
                ("held", found.stats.get("held", 0)),
            ):
                depth.add_metric([ns, queue], n)
            lag.add_metric([ns], found.lag_s or 0.0)
            locked.add_metric([ns], 1.0 if found.lockdown else 0.0)
            behind = backlog.status(self.r, ns)
            review["cases"].add_metric([ns], behind.open_cases)
            review["oldest"].add_metric([ns], behind.oldest_case_age_s)
            review["decided"].add_metric([ns], behind.decided_last_day)
            review["over"].add_metric([ns], behind.over_budget_cases)
            for code, n in self.r.hgetall(keys.reasons(ns)).items():
                reasons.add_metric([ns, code.decode()], int(n))
            for name, family in hists.items():
                raw = self.r.hgetall(keys.timing(ns, name))
                if raw:
                    buckets, total_s = _histogram(raw)
                    family.add_metric([ns], buckets, total_s)
        jobs = GaugeMetricFamily("feedbackguard_jobs_queued", "RQ jobs queued", labels=["queue"])
        for queue in keys.RQ_QUEUES:
            jobs.add_metric([queue], int(self.rq.llen(f"rq:queue:{queue}")))
        families: Iterable[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily] = (
            status,
            captured,
            decided,
            reasons,
            depth,
            lag,
            locked,
            *review.values(),
            *hists.values(),
            jobs,
        )
        yield from families


def render(r: redis.Redis[bytes], rq: redis.Redis[bytes] | None = None) -> bytes:
    """The Prometheus text exposition of everything `RedisCollector` reads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(r, rq))
    return generate_latest(registry)
