"""What an item page and a case page show a moderator: why the item (or case) is here,
the accounts behind it, its clusters (with a small SVG picture, with a legend) and
timelines on a real time axis, the items, infrastructure and texts a case's events
share, and the decision trail.

Everything here is plain data for the Jinja templates, which escape every value;
SVG coordinates are computed here so the template only places numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from feedbackguard import accounts, keys
from feedbackguard.graph.analysis import span_text
from feedbackguard.graph.window import subnet_of
from feedbackguard.pipeline import ledger
from feedbackguard.review import cases, casework, queue

# How many cluster members / shared items an item page draws and lists at most.
MAX_MEMBERS_SHOWN = 24
MAX_ITEMS_SHOWN = 8
SVG_SIZE = 220
TIMELINE_W, TIMELINE_H = 320, 90
TIMELINE_PAD, TIMELINE_AXIS = 24, 18
"""Left and right margin (the left one holds the count scale), and the height under
the bars for the time labels."""


@dataclass
class ClusterView:
    cluster_id: str
    code: str
    score: float
    detail: str
    members: list[str]
    member_count: int
    items: list[str]
    in_review: int
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, float]] = field(default_factory=list)
    timeline: Timeline | None = None


@dataclass
class Evidence:
    record: ledger.Record
    holder: str | None
    account_state: str | None
    account_age_days: float | None
    account_risk: dict[str, Any] | None
    approved_before: int
    rejected_before: int
    account_in_review: int
    clusters: list[ClusterView]


def _picture(view: ClusterView, account: str) -> None:
    """Members on an outer ring, shared items on an inner one, each member linked to
    each item (the cluster's evidence is exactly that they share them)."""
    c = SVG_SIZE / 2
    members, items = view.members[:MAX_MEMBERS_SHOWN], view.items[:MAX_ITEMS_SHOWN]
    outer, inner = c - 14, c / 3
    spots: list[tuple[float, float]] = []
    for i, name in enumerate(members):
        angle = 2 * math.pi * i / max(1, len(members))
        x, y = c + outer * math.cos(angle), c + outer * math.sin(angle)
        spots.append((x, y))
        view.nodes.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "r": 6,
                "kind": "account",
                "label": name,
                "self": name == account,
            }
        )
    for j, name in enumerate(items):
        angle = 2 * math.pi * j / max(1, len(items))
        x, y = c + inner * math.cos(angle), c + inner * math.sin(angle)
        for mx, my in spots:
            view.edges.append(
                {"x1": round(mx, 1), "y1": round(my, 1), "x2": round(x, 1), "y2": round(y, 1)}
            )
        view.nodes.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "r": 5,
                "kind": "item",
                "label": name,
                "self": False,
            }
        )


def _timeline(view: ClusterView, timeline: dict[str, Any] | None) -> None:
    counts = [(float(t), int(n)) for t, n in (timeline or {}).get("counts") or []]
    if counts:
        bucket = float((timeline or {}).get("bucket_s") or 0.0) or _step(
            counts[-1][0] - counts[0][0]
        )
        view.timeline = time_axis(counts, bucket)


# Bucket widths a timeline picks from (seconds): the smallest giving at most
# TIMELINE_BARS bars over the span.
_STEPS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
TIMELINE_BARS = 48


def _step(span_s: float) -> float:
    return float(next((s for s in _STEPS if span_s / s <= TIMELINE_BARS), 7 * 86400))


@dataclass
class Timeline:
    """Bars of events over time on a real time axis (SVG coordinates), with labels."""

    bars: list[dict[str, Any]]
    ticks: list[dict[str, Any]]
    top: int
    """The tallest bar's count (the y axis label)."""
    span: str
    """First to last event, as people read it ("within 3.2 min")."""
    bucket: str


def time_axis(counts: list[tuple[float, int]], bucket_s: float) -> Timeline:
    """Bars for (bucket start, events) pairs: x is time, each bar one bucket wide; an
    axis of at least three buckets, so a burst in one bucket is a bar, not the box."""
    start, end = counts[0][0], counts[-1][0] + bucket_s
    if end - start < 3 * bucket_s:
        pad = (3 * bucket_s - (end - start)) / 2
        start, end = start - pad, end + pad
    plot_w = TIMELINE_W - 2 * TIMELINE_PAD
    plot_h = TIMELINE_H - TIMELINE_AXIS
    top = max(n for _, n in counts) or 1

    def x(t: float) -> float:
        return round(TIMELINE_PAD + plot_w * (t - start) / (end - start), 1)

    bars = []
    for t, n in counts:
        h = max(1.0, (plot_h - 2) * n / top)
        bars.append(
            {
                "x": x(t),
                "y": round(plot_h - h, 1),
                "w": round(max(1.0, plot_w * bucket_s / (end - start) - 1), 1),
                "h": round(h, 1),
                "label": f"{_stamp(t, end - start)}: {n} event{'s' if n != 1 else ''}",
            }
        )
    ticks = [
        {"x": x(t), "label": _stamp(t, end - start), "anchor": anchor}
        for t, anchor in ((start, "start"), ((start + end) / 2, "middle"), (end, "end"))
    ]
    first, last = counts[0][0], counts[-1][0] + bucket_s
    return Timeline(
        bars=bars,
        ticks=ticks,
        top=top,
        span=span_text(last - first),
        bucket=span_text(bucket_s),
    )


def times_axis(times: list[float]) -> Timeline | None:
    """`time_axis` of single event times, bucketed by a width that fits the span."""
    if not times:
        return None
    bucket = _step(max(times) - min(times))
    counts: dict[float, int] = {}
    for t in times:
        start = math.floor(t / bucket) * bucket
        counts[start] = counts.get(start, 0) + 1
    return time_axis(sorted(counts.items()), bucket)


def _stamp(t: float, span_s: float) -> str:
    at = datetime.fromtimestamp(t, UTC)
    if span_s < 120:
        return at.strftime("%H:%M:%S")
    if span_s < 2 * 86400:
        return at.strftime("%H:%M")
    return at.strftime("%m-%d %H:%M")


def gather(r: redis.Redis[bytes], namespace: str, record: ledger.Record) -> Evidence:
    event = record.event
    account = event.account_id
    found = accounts.account_risk(r, namespace, account)
    pipe = r.pipeline(transaction=False)
    pipe.zscore(keys.moderated(namespace, True), account)
    pipe.zscore(keys.moderated(namespace, False), account)
    pipe.zcard(keys.review_account(namespace, account))
    approved, rejected, in_review = pipe.execute()
    age = None
    if event.account_created_at is not None:
        age = (event.received_at - event.account_created_at).total_seconds() / 86400
    views: list[ClusterView] = []
    for cid in (found or {}).get("clusters", []) or []:
        cluster = accounts.cluster(r, namespace, str(cid))
        if cluster is None:
            continue
        members = [str(m) for m in cluster.get("members", [])]
        pipe = r.pipeline(transaction=False)
        for m in members:
            pipe.zcard(keys.review_account(namespace, m))
        waiting = sum(int(n) for n in pipe.execute()) if members else 0
        view = ClusterView(
            cluster_id=str(cid),
            code=str(cluster.get("code", "")),
            score=float(cluster.get("score", 0.0)),
            detail=str(cluster.get("detail", "")),
            members=members[:MAX_MEMBERS_SHOWN],
            member_count=len(members),
            items=[str(i) for i in cluster.get("items", [])][:MAX_ITEMS_SHOWN],
            in_review=waiting,
        )
        _picture(view, account)
        _timeline(view, cluster.get("timeline"))
        views.append(view)
    return Evidence(
        record=record,
        holder=queue.holders(r, namespace, [event.event_id])[0],
        account_state=accounts.state(r, account),
        account_age_days=age,
        account_risk=found,
        approved_before=int(approved or 0),
        rejected_before=int(rejected or 0),
        account_in_review=int(in_review),
        clusters=views,
    )


# How many of a case's events its page loads (the counts above cover all of them),
# and how many members, items, shared addresses and texts it lists at most.
MAX_CASE_EVENTS = 2000
MAX_CASE_ROWS = 200
MAX_CASE_TEXTS = 10


@dataclass
class Member:
    """One account of a case and what its events in the case say."""

    account_id: str
    event_ids: list[str]
    values: list[tuple[str, int]]
    items: int
    age_days: float | None


@dataclass
class Shared:
    """An item or a piece of infrastructure several of a case's events share."""

    kind: str
    value: str
    events: int
    accounts: int


@dataclass
class CaseEvidence:
    """Everything a case page shows once for all its events."""

    case: cases.Case
    event_ids: list[str]
    """Its events: those waiting in it, or those the safe default rejected."""
    records: list[ledger.Record]
    """The first MAX_CASE_EVENTS of them, oldest first."""
    members: list[Member]
    items: list[Shared]
    infrastructure: list[Shared]
    texts: list[tuple[str, str, str]]
    """(item, kind, text) of the payload texts (what was labelled or reported)."""
    timeline: Timeline | None
    span: str

    @property
    def truncated(self) -> bool:
        return len(self.records) < len(self.event_ids)


def case_events(r: redis.Redis[bytes], namespace: str, case: cases.Case) -> list[str]:
    """A case's events: those in review in it, else (a case given the safe default)
    those the default rejected."""
    ids = cases.members(r, namespace, case.case_id)
    if ids or not case.over_budget:
        return ids
    done = casework.load_action(r, namespace, casework.over_budget_action(case.case_id))
    return done.rejected if done is not None else []


def gather_case(r: redis.Redis[bytes], namespace: str, case: cases.Case) -> CaseEvidence:
    ids = case_events(r, namespace, case)
    records = [rec for rec in ledger.load(r, namespace, ids[:MAX_CASE_EVENTS]) if rec]
    by_account: dict[str, list[ledger.Record]] = {}
    item_events: Counter[str] = Counter()
    item_accounts: dict[str, set[str]] = {}
    infra_events: Counter[tuple[str, str]] = Counter()
    infra_accounts: dict[tuple[str, str], set[str]] = {}
    texts: dict[tuple[str, str], str] = {}
    for rec in records:
        event = rec.event
        by_account.setdefault(event.account_id, []).append(rec)
        item_events[event.item_id] += 1
        item_accounts.setdefault(event.item_id, set()).add(event.account_id)
        for kind, value in (
            ("ip", event.ip),
            ("subnet", subnet_of(event.ip) if event.ip else None),
            ("device", event.device_id),
        ):
            if value:
                infra_events[(kind, value)] += 1
                infra_accounts.setdefault((kind, value), set()).add(event.account_id)
        if event.payload is not None and event.payload.text and len(texts) < MAX_CASE_TEXTS:
            texts.setdefault((event.item_id, event.payload.text), event.kind)
    members = [
        Member(
            account_id=account,
            event_ids=[rec.event.event_id for rec in mine],
            values=Counter(str(rec.event.value) for rec in mine).most_common(3),
            items=len({rec.event.item_id for rec in mine}),
            age_days=_age_days(mine[0]),
        )
        for account, mine in sorted(by_account.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    items = [
        Shared("item", item, n, len(item_accounts[item]))
        for item, n in item_events.most_common(MAX_CASE_ROWS)
    ]
    infrastructure = [
        Shared(kind, value, n, len(infra_accounts[(kind, value)]))
        for (kind, value), n in infra_events.most_common()
        if len(infra_accounts[(kind, value)]) > 1
    ][:MAX_CASE_ROWS]
    times = [rec.event.received_at.timestamp() for rec in records]
    return CaseEvidence(
        case=case,
        event_ids=ids,
        records=records,
        members=members[:MAX_CASE_ROWS],
        items=items,
        infrastructure=infrastructure,
        texts=[(item, kind, text) for (item, text), kind in texts.items()],
        timeline=times_axis(times),
        span=span_text(max(times) - min(times)) if times else "",
    )


def _age_days(record: ledger.Record) -> float | None:
    event = record.event
    if event.account_created_at is None:
        return None
    return (event.received_at - event.account_created_at).total_seconds() / 86400
