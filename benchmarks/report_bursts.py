"""Report brigades against organic report bursts, through the real pipeline.

Every run is three days of honest traffic (heavy-tailed activity, accounts of all
ages, shared campus and carrier NATs, a trickle of honest reports) with one report
brigade or one organic viral report burst mixed in. `--mode offline` (the default)
runs the report analysis alone every `analysis.interval_s` of event time on the
window up to then, as the analyser does, and counts a report admitted unless a run
scored it at or above the review threshold; `--mode graph` / `default` feed the real
`Pipeline` (the graph checks / every default check and analyser, default policy) on a
private embedded Redis and release until every event is decided (minutes per run on
a busy machine). The sweep crosses the brigade's members, targets, share of the
targets each member reports, IP spread (one /24, three /24s, residential), account
age (fresh, or aged weeks but idle until the attack) and burst length, and reports
the worst case: the share of brigade reports admitted, and the benign targets that
collected `--takedown` admitted reports. Organic viral bursts (a crowd of existing
accounts and brand-new ones, reporting one to three truly bad items within an hour)
measure the false flags: the share of the crowd's reports not admitted.

    python benchmarks/report_bursts.py [--runs 24] [--viral 6] [--seed 1] [--mode offline]
    python benchmarks/report_bursts.py --scale 1000000   # seconds of one analysis

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis

from feedbackguard import inbox_writer
from feedbackguard.checks.base import Check
from feedbackguard.checks.graph import GraphAnalyser, GraphCheck
from feedbackguard.checks.lists import ListCheck
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent, Kind
from feedbackguard.graph.reports import CORRELATED, detect_report_bursts
from feedbackguard.graph.window import EventWindow
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.store import Store

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR
NS = "default"
BATCH = 500
CAMPUS_IP = "129.97.10.20"
CGNAT = tuple(f"100.64.{p}.{h}" for p in range(4) for h in (7, 19, 44))
IP_SPREADS = ("one24", "few24", "residential")


def graph_checks() -> list[Check]:
    """The checks that see who sent a report: deny lists, rate limits, the graph."""
    return [ListCheck(), RateLimitCheck(), GraphCheck()]


AGES = ("fresh", "aged_idle")


@dataclass
class Account:
    account_id: str
    created: datetime
    ip: str
    device: str


@dataclass
class Stream:
    """Events and, per event id, who sent it ("honest", "brigade", "viral")."""

    events: list[FeedbackEvent] = field(default_factory=list)
    who: dict[str, str] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def emit(
        self,
        population: str,
        account: Account,
        at_s: float,
        item: str,
        *,
        kind: Kind = "report",
        value: str = "abuse",
    ) -> FeedbackEvent:
        event = FeedbackEvent(
            event_id=f"e{next(self.counter):08d}",
            kind=kind,
            account_id=account.account_id,
            account_created_at=account.created,
            item_id=item,
            value=value,
            ip=account.ip,
            device_id=account.device,
            user_agent="Mozilla/5.0",
            received_at=T0 + timedelta(seconds=at_s),
        )
        self.events.append(event)
        self.who[event.event_id] = population
        return event


def _residential(rng: random.Random) -> str:
    first = rng.choice((24, 50, 68, 73, 98, 174))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def honest(
    stream: Stream,
    rng: random.Random,
    accounts: int = 600,
    events: int = 4000,
    days: float = 3.0,
    items: int = 1500,
    report_rate: float = 0.02,
) -> list[Account]:
    """Honest traffic: Pareto activity over Zipf items, ages from days to years (8 %
    younger than a week), 5 % behind one campus NAT and 15 % on carrier NATs, a
    trickle of honest reports. Returns the accounts."""
    people = []
    for n in range(accounts):
        age = rng.uniform(0.5, 7.0) if rng.random() < 0.08 else 7.0 * (300 ** rng.random())
        ip = CAMPUS_IP if rng.random() < 0.05 else _residential(rng)
        if rng.random() < 0.15:
            ip = rng.choice(CGNAT)
        created = T0 - timedelta(days=age)
        people.append(Account(f"u{n:05d}", created, ip, f"d-u{n}"))
    activity = [rng.paretovariate(1.3) for _ in people]
    popularity = [1.0 / (i + 1) ** 0.9 for i in range(items)]
    for who, what in zip(
        rng.choices(people, weights=activity, k=events),
        rng.choices(range(items), weights=popularity, k=events),
        strict=True,
    ):
        start = max(0.0, (who.created - T0).total_seconds())
        at = rng.uniform(start, days * DAY)
        if rng.random() < report_rate:
            stream.emit("honest", who, at, f"post-{what}", value="spam")
        else:
            stream.emit("honest", who, at, f"post-{what}", kind="label", value=rng.choice("ab"))
    return people


@dataclass(frozen=True)
class Brigade:
    members: int = 40
    targets: int = 2
    share: float = 1.0
    ips: str = "one24"
    age: str = "fresh"
    burst_s: float = 2 * HOUR
    start_s: float = 1.5 * DAY


def brigade(stream: Stream, rng: random.Random, p: Brigade) -> list[str]:
    """Members report the targets (benign posts nobody else reports), each member a
    random `share` of them (at least one), within `burst_s`. Fresh accounts were made
    hours to days before; aged-idle ones weeks before, and never acted until now."""
    targets = [f"benign-{t}" for t in range(p.targets)]
    start = p.start_s
    nets = [f"185.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(3)]
    for m in range(p.members):
        if p.age == "fresh":
            created = T0 + timedelta(seconds=start - rng.uniform(1 * HOUR, 72 * HOUR))
        else:
            created = T0 + timedelta(seconds=start - rng.uniform(14 * DAY, 90 * DAY))
        if p.ips == "one24":
            ip = f"{nets[0]}.{rng.randrange(1, 255)}"
        elif p.ips == "few24":
            ip = f"{rng.choice(nets)}.{rng.randrange(1, 255)}"
        else:
            ip = _residential(rng)
        who = Account(f"b{m:04d}", created, ip, f"d-b{m}")
        picked = [t for t in targets if rng.random() < p.share] or [rng.choice(targets)]
        for target in picked:
            stream.emit("brigade", who, start + rng.uniform(0, p.burst_s), target)
    return targets


def viral(
    stream: Stream,
    rng: random.Random,
    people: Sequence[Account],
    size: int = 120,
    items: int = 3,
    new_share: float = 0.3,
    duration_s: float = HOUR,
    start_s: float = 1.5 * DAY,
) -> list[str]:
    """An organic report burst on truly bad posts: existing accounts and brand-new ones
    (made minutes to hours before, own addresses), each reporting one to all of the
    posts, arrivals exponential over about `duration_s`."""
    bad = [f"bad-{i}" for i in range(items)]
    for n in range(size):
        if rng.random() < new_share:
            created = T0 + timedelta(seconds=start_s - rng.uniform(60, 6 * HOUR))
            who = Account(f"v{n:04d}", created, _residential(rng), f"d-v{n}")
        else:
            who = rng.choice(people)
        for item in rng.sample(bad, rng.randint(1, items)):
            stream.emit("viral", who, start_s + rng.expovariate(3.0 / duration_s), item)
    return bad


def decide_all(
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    events: Iterable[FeedbackEvent],
    every_s: float | None = None,
) -> None:
    """Feed the events in time order, analysing and releasing each time the clock has
    moved `every_s` (the policy's analysis interval by default, as the pump does; a
    longer one is a slower worker), then let every probation end."""
    ordered = sorted(events, key=lambda e: e.received_at)
    policy = pipeline.policies.current().policy
    every = every_s or policy.analysis.interval_s
    next_run = ordered[0].received_at.timestamp() + every
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        pipe = r.pipeline(transaction=False)
        inbox_writer.append(pipe, chunk)
        pipe.execute()
        while pipeline.ingest_batch(NS, "bench").entries:
            pass
        while ledger.clock(r, NS) >= next_run:
            pipeline.analyse(NS)
            while pipeline.release(NS):
                pass
            next_run += every
    end = ordered[-1].received_at.timestamp() + policy.probation_s
    while next_run <= end + every:
        pipe = r.pipeline()
        ledger.advance_clock(pipe, NS, next_run)
        pipe.execute()
        pipeline.analyse(NS)
        while pipeline.release(NS):
            pass
        next_run += every


@dataclass
class Outcome:
    admitted: Counter[str]
    total: Counter[str]
    admitted_reports: Counter[str]
    """Admitted reports per item."""
    flagged: Counter[str] = field(default_factory=Counter)
    """Reports with reports.correlated, per population."""
    reports: Counter[str] = field(default_factory=Counter)


def run(
    server: EmbeddedRedis, store_dir: Path, stream: Stream, checks: str, every_s: float | None
) -> Outcome:
    """The stream through a pipeline with every default check and analyser
    (`checks="default"`), or with only those that see who sent a report (`"graph"`:
    deny lists, rate limits, the graph check and analysis; the others can only add
    reasons, so it admits at least as much)."""
    url = server.start()
    r = redis.Redis.from_url(url)
    r.flushdb()
    store = Store(f"sqlite:///{store_dir / f'store-{time.monotonic_ns()}.db'}", b"k" * 32)
    pipeline = Pipeline(
        r=r,
        store=store,
        policies=PolicyStore(r, cache_s=0),
        checks=default_checks() if checks == "default" else graph_checks(),
        analysers=default_analysers() if checks == "default" else [GraphAnalyser()],
        batch_size=BATCH,
    )
    decide_all(r, pipeline, stream.events, every_s)
    ids = [e.event_id for e in stream.events]
    records = ledger.load(r, NS, ids)
    out = Outcome(Counter(), Counter(), Counter(), Counter())
    for event, record in zip(stream.events, records, strict=True):
        population = stream.who[event.event_id]
        out.total[population] += 1
        assert record is not None
        if event.kind == "report":
            out.reports[population] += 1
            if any(x.code == CORRELATED for x in record.decision.reasons):
                out.flagged[population] += 1
        if record.decision.status == "admitted":
            out.admitted[population] += 1
            if event.kind == "report":
                out.admitted_reports[event.item_id] += 1
    store.close()
    r.close()
    return out


def judge_offline(stream: Stream, every_s: float) -> Outcome:
    """The report analysis alone, run every `every_s` of event time as the analyser
    would, on the window up to that time: a report ends admitted unless some run
    scores it at or above the review threshold (pending ones go to review or are
    rejected, admitted ones are quarantined). Rate limits and the other detectors
    only add reasons, so this admits at least as much as the pipeline does."""
    policy = Policy.default()
    ordered = sorted(stream.events, key=lambda e: e.received_at)
    times = np.array([e.received_at.timestamp() for e in ordered])
    is_report = np.array([e.kind in policy.graph.detect.reports.kinds for e in ordered])
    # The events up to each run are a prefix of the whole window's (codes kept).
    window = EventWindow.from_events(ordered)
    worst: dict[str, float] = {}
    now = float(times[0])
    end = float(times[-1]) + policy.probation_s
    while now <= end + every_s:
        n = int(np.searchsorted(times, now, side="right"))
        part = replace(
            window,
            **{c: getattr(window, c)[:n] for c in ("account", "item", "value", "time", "ip")},
            subnet=window.subnet[:n],
            device=window.device[:n],
        )
        for b in detect_report_bursts(part, is_report[:n], policy.graph.detect.reports, now):
            for e in b.events.tolist():
                worst[ordered[e].event_id] = max(worst.get(ordered[e].event_id, 0.0), b.harm)
        now += every_s
    out = Outcome(Counter(), Counter(), Counter())
    for event in ordered:
        population = stream.who[event.event_id]
        out.total[population] += 1
        harm = worst.get(event.event_id)
        if event.kind == "report":
            out.reports[population] += 1
            out.flagged[population] += harm is not None
        if harm is None or harm < policy.thresholds.review:
            out.admitted[population] += 1
            if event.kind == "report":
                out.admitted_reports[event.item_id] += 1
    return out


def brigade_grid(rng: random.Random, runs: int) -> list[Brigade]:
    """`runs` brigades: the two known small ones and the corners first, then random draws."""
    fixed = [
        Brigade(members=40, targets=2, ips="one24", age="fresh", burst_s=HOUR),
        Brigade(members=20, targets=4, ips="residential", age="fresh", burst_s=HOUR),
        Brigade(members=5, targets=1, ips="residential", age="aged_idle", burst_s=2 * DAY),
        Brigade(members=200, targets=10, share=0.3, ips="residential", age="aged_idle"),
        Brigade(
            members=8, targets=4, share=0.5, ips="residential", age="aged_idle", burst_s=2 * DAY
        ),
        Brigade(members=60, targets=3, share=0.5, ips="few24", age="aged_idle", burst_s=600),
    ]
    drawn = [
        Brigade(
            members=round(5 * 40 ** rng.random()),
            targets=rng.randint(1, 10),
            share=rng.uniform(0.3, 1.0),
            ips=rng.choice(IP_SPREADS),
            age=rng.choice(AGES),
            burst_s=600 * (288 ** rng.random()),
        )
        for _ in range(max(0, runs - len(fixed)))
    ]
    return (fixed + drawn)[:runs]


def scale(n: int, report_share: float = 0.02, seed: int = 0) -> dict[str, float]:
    """Seconds of one report analysis over an n-event window of heavy-tailed accounts
    and items (Zipf), a random IP per event, `report_share` of events reports."""
    rng = np.random.default_rng(seed)
    accounts, items = max(1, n // 10), max(1, n // 5)
    ip = rng.integers(0, accounts, n)
    window = EventWindow.from_arrays(
        rng.zipf(1.5, n) % accounts,
        rng.zipf(1.3, n) % items,
        rng.uniform(0, 7 * DAY, n),
        ip=ip,
        subnet=ip // 50,
        device=rng.integers(0, accounts, n),
        account_created=rng.uniform(-1e8, 0, accounts),
        n_accounts=accounts,
        n_items=items,
    )
    is_report = rng.random(n) < report_share
    started = time.perf_counter()
    found = detect_report_bursts(
        window, is_report, Policy.default().graph.detect.reports, 7 * DAY + HOUR
    )
    return {
        "events": n,
        "reports": int(is_report.sum()),
        "flagged_items": len(found),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24, help="brigades (6 fixed, then random)")
    parser.add_argument("--viral", type=int, default=6, help="organic viral bursts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--takedown", type=int, default=5, help="admitted reports that act")
    parser.add_argument(
        "--mode",
        choices=("offline", "graph", "default"),
        default="offline",
        help="offline: the report analysis alone, run as the analyser would (fast); "
        "graph / default: the real pipeline with the graph checks / every default check",
    )
    parser.add_argument(
        "--every", type=float, default=None, help="analysis every N s of event time (policy's)"
    )
    parser.add_argument("--scale", type=int, default=0, help="only time one analysis of N events")
    args = parser.parse_args(argv)
    if args.scale:
        print(json.dumps(scale(args.scale)))
        return
    rng = random.Random(args.seed)
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "home")
        try:
            for k, p in enumerate(brigade_grid(rng, args.runs)):
                stream = Stream()
                seeded = random.Random(args.seed * 1000 + k)
                honest(stream, seeded)
                targets = brigade(stream, seeded, p)
                out = (
                    judge_offline(stream, args.every or Policy.default().analysis.interval_s)
                    if args.mode == "offline"
                    else run(server, Path(tmp), stream, args.mode, args.every)
                )
                row = {
                    "kind": "brigade",
                    **asdict(p),
                    "reports": out.total["brigade"],
                    "admitted": out.admitted["brigade"] / out.total["brigade"],
                    "taken_down": sum(out.admitted_reports[t] >= args.takedown for t in targets),
                    "honest_admitted": out.admitted["honest"] / out.total["honest"],
                    "honest_reports": out.reports["honest"],
                    "honest_reports_flagged": out.flagged["honest"],
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
            for k in range(args.viral):
                stream = Stream()
                seeded = random.Random(args.seed * 1000 + 500 + k)
                people = honest(stream, seeded)
                size = round(20 * 10 ** seeded.random())
                bad = viral(stream, seeded, people, size=size, items=seeded.randint(1, 3))
                out = (
                    judge_offline(stream, args.every or Policy.default().analysis.interval_s)
                    if args.mode == "offline"
                    else run(server, Path(tmp), stream, args.mode, args.every)
                )
                row = {
                    "kind": "viral",
                    "size": size,
                    "items": len(bad),
                    "reports": out.total["viral"],
                    "not_admitted": 1 - out.admitted["viral"] / out.total["viral"],
                    "flagged": out.flagged["viral"] / out.total["viral"],
                    "honest_reports": out.reports["honest"],
                    "honest_reports_flagged": out.flagged["honest"],
                    "acted_on": sum(out.admitted_reports[b] >= args.takedown for b in bad),
                    "honest_admitted": out.admitted["honest"] / out.total["honest"],
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        finally:
            server.stop()
    brigades = [r for r in rows if r["kind"] == "brigade"]
    virals = [r for r in rows if r["kind"] == "viral"]
    worst = max(brigades, key=lambda r: (r["taken_down"], r["admitted"]), default=None)
    summary = {
        "brigades": len(brigades),
        "worst_brigade_admitted": max((r["admitted"] for r in brigades), default=None),
        "worst_benign_taken_down": max((r["taken_down"] for r in brigades), default=None),
        "worst_brigade": worst,
        "viral_bursts": len(virals),
        "worst_viral_not_admitted": max((r["not_admitted"] for r in virals), default=None),
        "viral_reports_not_admitted": (
            sum(r["not_admitted"] * r["reports"] for r in virals)
            / max(1, sum(r["reports"] for r in virals))
        ),
        "worst_honest_admitted": min(r["honest_admitted"] for r in rows) if rows else None,
        "honest_background_reports_flagged": (
            sum(r["honest_reports_flagged"] for r in rows)
            / max(1, sum(r.get("honest_reports", 0) for r in rows))
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
