"""What an item page shows a moderator: why the item is here, the account behind it,
its clusters (with a small SVG picture and a timeline) and the decision trail.

Everything here is plain data for the Jinja templates, which escape every value;
SVG coordinates are computed here so the template only places numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from feedbackguard import accounts, keys
from feedbackguard.pipeline import ledger
from feedbackguard.review import queue

# How many cluster members / shared items an item page draws and lists at most.
MAX_MEMBERS_SHOWN = 24
MAX_ITEMS_SHOWN = 8
SVG_SIZE = 220
TIMELINE_W, TIMELINE_H = 220, 60


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
    bars: list[dict[str, Any]] = field(default_factory=list)


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
    counts = list((timeline or {}).get("counts") or [])
    if not counts:
        return
    top = max(int(n) for _, n in counts) or 1
    width = TIMELINE_W / len(counts)
    for k, (start, n) in enumerate(counts):
        h = max(1.0, (TIMELINE_H - 4) * int(n) / top)
        view.bars.append(
            {
                "x": round(k * width, 1),
                "y": round(TIMELINE_H - h, 1),
                "w": round(max(1.0, width - 1), 1),
                "h": round(h, 1),
                "label": f"{_minute(float(start))}: {n}",
            }
        )


def _minute(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="minutes")


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
