"""The account graph in the pipeline: kept per batch, analysed periodically.

Per batch (`GraphCheck`): every event's compact row (`graph.window.row_of`) is
appended to its namespace's window in Redis, in slices of `policy.graph.bucket_s` of
event time (the ids of report events beside it), and events of accounts that the last
analysis found risky get its reasons at once; events of admin-blocked accounts are
rejected (`account.blocked`).
One pipelined round trip per batch.

Periodically (`GraphAnalyser`): the window is loaded (duplicates of redelivered
batches dropped by event id), every graph detector runs on it
(`feedbackguard.graph.analysis.analyse`), the findings replace the cached ones read
by the check, the moderator review UI and `feedbackguard accounts show`, and the
events in the window of accounts at `policy.graph.min_risk` or more are returned so
the pipeline re-judges them (pending to review or rejected, admitted to quarantined).
The report analysis (`graph.reports`) runs on the same window: the reports of
correlated cohorts on an item get `reports.correlated` scored by harm and are
re-judged the same way. Each run publishes every account's independence weight
(`graph.independence`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import redis

from feedbackguard import accounts, keys
from feedbackguard.checks.base import (
    AnalysisContext,
    CheckContext,
    Findings,
    Reason,
    Verdicts,
)
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph import independence
from feedbackguard.graph.analysis import AccountRisk, AnalysisResult, Cluster, analyse
from feedbackguard.graph.reports import CORRELATED, ReportBurst, detect_report_bursts
from feedbackguard.graph.window import EventWindow, Row, Rows, row_of
from feedbackguard.policy import Graph

BLOCKED = Reason("account.blocked", "account blocked by an admin", 1.0)
# Scores are rounded so that an analysis finding the same thing again with a slightly
# different score does not re-decide (and lengthen the trail of) every event it names.
SCORE_DIGITS = 2


def _bucket(t: float, bucket_s: float) -> int:
    return int(math.floor(t / bucket_s) * bucket_s)


def append_rows(
    pipe: redis.client.Pipeline[bytes], namespace: str, rows: Sequence[Row], policy: Graph
) -> None:
    """Queue on `pipe` the appends of `rows` to the namespace's window."""
    by_bucket: dict[int, list[bytes]] = {}
    for row in rows:
        # orjson encodes a tuple, not a NamedTuple: the stored form is the plain array.
        by_bucket.setdefault(_bucket(row.time, policy.bucket_s), []).append(
            orjson.dumps(tuple(row))
        )
    # Wall-clock expiry backs up the analyser's event-time trimming (a namespace that
    # stops receiving feedback is never analysed again).
    ttl = int(policy.window_s + 2 * policy.bucket_s)
    for start, encoded in by_bucket.items():
        key = keys.graph_bucket(namespace, start)
        pipe.rpush(key, *encoded)
        pipe.expire(key, ttl)
        pipe.zadd(keys.graph_buckets(namespace), {key: start})


class BucketCache:
    """Decoded rows of one namespace's window buckets, kept by a worker between
    analysis runs.

    A bucket only grows (RPUSH) until it is dropped whole, so a run reads only what
    was appended since the last one; a bucket whose first entry changed was dropped
    and made again, and is read whole. Reading the whole window at every run was a large
    share of analysis time (docs/benchmarks.md).
    """

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[bytes, Rows]] = {}

    def read(self, r: redis.Redis[bytes], keys_: Sequence[str]) -> list[Rows]:
        """Each bucket's rows, in RPUSH order; forgets buckets not asked for."""
        pipe = r.pipeline(transaction=False)
        for key in keys_:
            cached = self.buckets.get(key)
            pipe.lindex(key, 0)
            pipe.lrange(key, len(cached[1]) if cached else 0, -1)
        replies = pipe.execute()
        kept: dict[str, tuple[bytes, Rows]] = {}
        for key, first, tail in zip(keys_, replies[::2], replies[1::2], strict=True):
            if first is None:  # dropped since the index was read
                continue
            cached = self.buckets.get(key)
            if cached is None:
                cached = (first, Rows())
            elif cached[0] != first:
                cached = (first, Rows())
                tail = r.lrange(key, 0, -1)
            cached[1].extend(orjson.loads(raw) for raw in tail)
            kept[key] = cached
        self.buckets = kept
        return [kept[key][1] for key in keys_ if key in kept]


def record_reports(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    events: Sequence[FeedbackEvent],
    policy: Graph,
) -> None:
    """Queue on `pipe` the ids of the events of the report kinds (the window's rows do
    not carry the kind), for the report analysis (`graph.reports`)."""
    if not policy.detect.reports.enabled:
        return  # nothing would trim them
    kinds = policy.detect.reports.kinds
    found = {e.event_id: e.received_at.timestamp() for e in events if e.kind in kinds}
    if found:
        pipe.zadd(keys.report_ids(namespace), found)
        pipe.expire(keys.report_ids(namespace), int(policy.window_s + 2 * policy.bucket_s))


def load_report_mask(
    r: redis.Redis[bytes], namespace: str, start: float, rows: Rows
) -> npt.NDArray[np.bool_]:
    """Per row, whether it is a report; forgets report ids older than `start`."""
    key = keys.report_ids(namespace)
    pipe = r.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", start)
    pipe.zrangebyscore(key, f"({start}", "+inf")
    ids = {raw.decode() for raw in pipe.execute()[1]}
    if not ids:
        return np.zeros(len(rows), dtype=bool)
    return np.fromiter((e in ids for e in rows.event_id), dtype=bool, count=len(rows))


def load_window(
    r: redis.Redis[bytes],
    namespace: str,
    start: float,
    policy: Graph,
    cache: BucketCache | None = None,
) -> Rows:
    """Rows of events after `start` (event time), each event id once; `cache` keeps
    them for the next call."""
    index = keys.graph_buckets(namespace)
    buckets = [key.decode() for key in r.zrangebyscore(index, start - policy.bucket_s, "+inf")]
    parts: list[Rows] = []
    seen: set[str] = set()
    for chunk in (cache if cache is not None else BucketCache()).read(r, buckets):
        keep: list[int] = []
        for i, (event_id, t) in enumerate(zip(chunk.event_id, chunk.time, strict=True)):
            if t > start and event_id not in seen:
                seen.add(event_id)
                keep.append(i)
        parts.append(chunk if len(keep) == len(chunk) else chunk.take(keep))
    return Rows.concat(parts)


def trim_window(r: redis.Redis[bytes], namespace: str, start: float, policy: Graph) -> None:
    """Drop the buckets that hold only events before `start` (event time)."""
    index = keys.graph_buckets(namespace)
    old = r.zrangebyscore(index, "-inf", f"({start - policy.bucket_s}")
    if old:
        pipe = r.pipeline(transaction=False)
        pipe.delete(*old)
        pipe.zrem(index, *old)
        pipe.execute()


def _reasons(raw: bytes) -> list[Reason]:
    return _reasons_of(orjson.loads(raw))


def _reasons_of(found: dict[str, Any]) -> list[Reason]:
    """An account's cached reasons, each with its group (`Reason.group`)."""
    groups = found.get("groups", {})
    return [
        Reason(code, detail, score, groups.get(code, ""))
        for code, detail, score in found["reasons"]
    ]


class GraphCheck:
    """Keeps the graph window and applies the last analysis's findings at ingest."""

    name = "graph"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.graph
        if not events:
            return {}
        names = sorted({e.account_id for e in events})
        pipe = ctx.redis.pipeline(transaction=False)
        if policy.enabled:
            append_rows(pipe, ctx.namespace, [row_of(e) for e in events], policy)
            record_reports(pipe, ctx.namespace, events, policy)
        pipe.hmget(keys.account_states(), names)
        pipe.hmget(keys.graph_risk(ctx.namespace), names)
        replies = pipe.execute()
        states = dict(zip(names, replies[-2], strict=True))
        risks = dict(zip(names, replies[-1], strict=True)) if policy.enabled else {}
        findings: Findings = {}
        for index, event in enumerate(events):
            state = states[event.account_id]
            if state == b"blocked":
                findings[index] = [BLOCKED]
            elif state != b"trusted" and (raw := risks.get(event.account_id)) is not None:
                findings[index] = _reasons(raw)
        return findings


class GraphAnalyser:
    """Runs every graph detector over the namespace's window (see module docstring);
    `incremental` keeps the window's decoded rows between runs (`BucketCache`)."""

    name = "graph"

    def __init__(self, *, incremental: bool = True) -> None:
        self.caches: dict[str, BucketCache] = {}
        self.incremental = incremental

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        policy = ctx.policy.graph
        if not policy.enabled:
            return {}
        r = ctx.redis
        start = ctx.now - policy.window_s
        trim_window(r, ctx.namespace, start, policy)
        # Incremental: the window's rows decoded once per worker; full: all read again.
        cache = self.caches.setdefault(ctx.namespace, BucketCache()) if self.incremental else None
        rows = load_window(r, ctx.namespace, start, policy, cache)
        if not rows:
            accounts.replace_findings(r, ctx.namespace, [], [])
            independence.publish(r, ctx.namespace, (), np.ones(0))
            return {}
        window = EventWindow.from_rows(rows)
        trusted, rejected = accounts.seeds(r, ctx.namespace)
        result = analyse(
            window,
            policy.detect,
            trusted=[*trusted, *auto_seeds(window, policy, set(rejected))],
            rejected=rejected,
        )
        bursts = (
            detect_report_bursts(
                window,
                load_report_mask(r, ctx.namespace, start, rows),
                policy.detect.reports,
                ctx.now,
                _mask(window, trusted),
            )
            if policy.detect.reports.enabled
            else []
        )
        independence.publish(
            r,
            ctx.namespace,
            window.account_ids,
            independence.cohort_weights(
                window.n_accounts, [*result.cohorts, *(c for b in bursts for c in b.cohorts)]
            ),
        )
        vouched = set(trusted)
        risky = {
            name: found
            for name, found in result.accounts.items()
            if found.risk >= policy.min_risk and name not in vouched
        }
        findings = {name: _risk_json(found) for name, found in risky.items()}
        before = r.hgetall(keys.graph_risk(ctx.namespace))
        accounts.replace_findings(
            r,
            ctx.namespace,
            findings.items(),
            ((c.cluster_id, asdict(c)) for c in _clusters_of(result, risky)),
        )
        # Events ingested since the last run already carry its findings (GraphCheck),
        # so only accounts whose reasons changed need their window re-judged.
        changed = {
            name
            for name, found in findings.items()
            if (old := before.get(name.encode())) is None
            or orjson.loads(old)["reasons"] != found["reasons"]
        }
        verdicts: Verdicts = {}
        for event_id, account in zip(rows.event_id, rows.account, strict=True):
            if account in changed:
                verdicts[event_id] = _reasons_of(findings[account])
        for burst in bursts:
            reason = _burst_reason(window, burst, policy.detect.reports.action_reports)
            for e in burst.events.tolist():
                verdicts.setdefault(rows.event_id[e], []).append(reason)
        return verdicts


def auto_seeds(window: EventWindow, policy: Graph, exclude: set[str]) -> list[str]:
    """Old accounts with some history in the window: the honest region's anchors
    when admins and moderators have vouched for few accounts."""
    if policy.seed_max == 0:
        return []
    counts = np.bincount(window.account, minlength=window.n_accounts)
    # Age at the first event here, from the earliest claimed creation time; -inf
    # (never old) for accounts that claim none.
    age = np.nan_to_num(window.first_seen() - window.account_created, nan=-np.inf)
    hit = (age >= policy.seed_min_age_s) & (counts >= policy.seed_min_events)
    ranked = sorted(
        (-int(counts[i]), window.account_ids[i])
        for i in np.flatnonzero(hit).tolist()
        if window.account_ids[i] not in exclude
    )
    return [name for _, name in ranked[: policy.seed_max]]


def _mask(window: EventWindow, names: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Per account of the window, whether it is one of `names`."""
    chosen = set(names)
    return np.fromiter((a in chosen for a in window.account_ids), bool, window.n_accounts)


def _burst_reason(window: EventWindow, burst: ReportBurst, action: int) -> Reason:
    """`reports.correlated`, scored by the burst's harm."""
    largest = max((c.size for c in burst.cohorts), default=1)
    detail = (
        f"{burst.reporters} accounts reported {window.item_ids[burst.item]}, about "
        f"{burst.independent} independently ({burst.without_history} without history "
        f"before the burst, largest cohort {largest}); {action} reports act on an item"
    )
    # One case per reported item: the burst on an item is what a moderator judges.
    group = f"reports:{window.item_ids[burst.item]}"
    return Reason(CORRELATED, detail, round(burst.harm, SCORE_DIGITS), group)


def _risk_json(found: AccountRisk) -> dict[str, Any]:
    return {
        "risk": round(found.risk, SCORE_DIGITS),
        "reasons": [[x.code, x.detail, round(x.score, SCORE_DIGITS)] for x in found.reasons],
        "groups": {x.code: x.group for x in found.reasons if x.group},
        "clusters": list(found.clusters),
    }


def _clusters_of(result: AnalysisResult, risky: dict[str, AccountRisk]) -> list[Cluster]:
    """Clusters with at least one risky member (the evidence moderators need)."""
    return [c for c in result.clusters if any(m in risky for m in c.members)]
