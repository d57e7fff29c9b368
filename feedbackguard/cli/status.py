"""`feedbackguard status`: what every namespace looks like now, on one screen.

Per namespace: events by status and the most frequent reasons, the inbox not yet
ingested and how old its oldest entry is, what waits out its probation and when it
is released, the review backlog, and what was set aside (held copies, dead letters).
Probation and review are measured in the namespace's event time (its clock: the
latest `received_at`, or wall time with `clock = "wall"`), which is what releases
them (docs/architecture.md, "Event time, not wall time").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, get_args

import click
import redis

from feedbackguard import keys
from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.decisions import Status
from feedbackguard.pipeline import ledger, namespaces

TOP_REASONS = 5
STATUSES: tuple[str, ...] = get_args(Status)


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat() if t else None


def _first(r: redis.Redis[bytes], key: str, last: bool = False) -> float | None:
    """The lowest (or highest) score of a sorted set, None when it is empty."""
    found = r.zrange(key, -1 if last else 0, -1 if last else 0, withscores=True)
    return float(found[0][1]) if found else None


def namespace_status(r: redis.Redis[bytes], namespace: str) -> dict[str, Any]:
    """One namespace's status as plain JSON-able data (what `--json` prints)."""
    info = namespaces.info(r, namespace)
    clock = info.clock
    analysed = ledger.analysed(r, namespace)
    horizon = min(clock, analysed)  # a release never passes what analysis has seen
    next_due = _first(r, keys.pending(namespace))
    last_due = _first(r, keys.pending(namespace), last=True)
    oldest_review = _first(r, keys.review(namespace))
    reasons = {k.decode(): int(v) for k, v in r.hgetall(keys.reasons(namespace)).items()}
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    return {
        "namespace": namespace,
        "clock": _iso(clock),
        "analysed_to": _iso(analysed),
        "analysis_behind_s": max(0.0, clock - analysed) if analysed else None,
        "statuses": {s: info.stats.get(s, 0) for s in STATUSES},
        "top_reasons": [{"code": code, "events": n} for code, n in top],
        "inbox": {"waiting": info.inbox, "lag_s": info.lag_s},
        "probation": {
            "waiting": info.pending,
            "due_now": int(r.zcount(keys.pending(namespace), "-inf", horizon)),
            "next_release_at": _iso(next_due),
            "next_release_in_s": None if next_due is None else max(0.0, next_due - clock),
            "last_release_at": _iso(last_due),
            "last_release_in_s": None if last_due is None else max(0.0, last_due - clock),
        },
        "review": {
            "waiting": info.review,
            "oldest_received_at": _iso(oldest_review),
            "oldest_age_s": None if oldest_review is None else max(0.0, clock - oldest_review),
        },
        "held": int(r.llen(keys.held(namespace))),
        "dead_letters": int(r.llen(keys.dead_letters(namespace))),
        "lockdown": info.lockdown,
    }


def duration(seconds: float) -> str:
    """A short human duration: `42 s`, `5 min`, `3.2 h`, `2.0 d`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _lines(s: dict[str, Any]) -> list[str]:
    statuses = ", ".join(f"{n:,} {status}" for status, n in s["statuses"].items())
    reasons = ", ".join(f"{r['code']} {r['events']:,}" for r in s["top_reasons"]) or "none"
    inbox = s["inbox"]
    lag = f", oldest {duration(inbox['lag_s'])} old" if inbox["lag_s"] is not None else ""
    p = s["probation"]
    probation = f"{p['waiting']:,} pending"
    if p["waiting"]:
        probation += (
            f": {p['due_now']:,} due now, next release in {duration(p['next_release_in_s'])},"
            f" last in {duration(p['last_release_in_s'])} of event time"
        )
    if s["analysed_to"] is None:
        analysis = "not run yet (releases wait for it)"
    else:
        analysis = f"has covered events up to {duration(s['analysis_behind_s'])} before the clock"
    review = f"{s['review']['waiting']:,} waiting for a moderator"
    if s["review"]["oldest_age_s"] is not None:
        review += f", oldest {duration(s['review']['oldest_age_s'])} old"
    lines = [
        f"{s['namespace']}  (event clock {s['clock'] or 'not started'})",
        f"  statuses   {statuses}",
        f"  reasons    {reasons}",
        f"  inbox      {inbox['waiting']:,} not yet ingested{lag}",
        f"  probation  {probation}",
        f"  analysis   {analysis}",
        f"  review     {review}",
        f"  set aside  {s['held']:,} held, {s['dead_letters']:,} dead letters",
    ]
    if s["lockdown"]:
        why = ", ".join(f"{k} {v}" for k, v in s["lockdown"].items())
        lines.append(f"  LOCKED DOWN: every new event goes to review ({why})")
    return lines


@click.command("status")
@click.option(
    "--namespace",
    "only",
    multiple=True,
    help="Only this namespace (repeatable; default: every namespace).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {namespaces: [...]}.")
def status(only: tuple[str, ...], as_json: bool) -> None:
    """Per namespace: events by status and top reasons, inbox lag, what waits out its
    probation and when it is released, the review backlog."""
    r = connect(existing_settings(redis=True))
    names = list(only) or namespaces.known(r)
    found = [namespace_status(r, name) for name in names]
    if as_json:
        click.echo(json.dumps({"namespaces": found}))
        return
    if not found:
        click.echo("no namespace has received feedback yet")
    for i, s in enumerate(found):
        if i:
            click.echo("")
        click.echo("\n".join(_lines(s)))
