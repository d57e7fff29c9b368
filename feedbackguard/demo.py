"""`feedbackguard demo`: the whole product on the embedded default, in about a minute.

It starts a private Redis and SQLite store (under `<FEEDBACKGUARD_HOME>/demo`, so a
real deployment's state is never touched), a worker process and the example support
desk (`examples/shop`), then plays honest agents and three attackers against the
desk's feedback endpoint over real HTTP:

* honest agents, old accounts, some behind one campus NAT, correcting tickets with a
  little label noise;
* a fresh Sybil swarm flipping the label of a few target tickets in lockstep;
* one fresh account flooding corrections (over the new-account rate limit);
* a handful of aged sleeper accounts pushing the same flip slowly.

It waits until every event has a final status and prints what was stopped, what
waits for review, and what retraining on the admitted data does to the model
compared with retraining on everything.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import random
import secrets
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from werkzeug.serving import BaseWSGIServer, make_server

from feedbackguard import keys
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.replay import start_workers, stop_workers
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy import Analysis, Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import STORE_FILE_NAME, Store
from feedbackguard.web import auth
from feedbackguard.web.server import create_app

NAMESPACE = "tickets"
# The review UI's login for this run (a fresh password each run, private Redis).
MODERATOR = "demo-moderator"
DEMO_DIR = "demo"
# The demo's time scale: probation of seconds instead of hours, analysis every few
# seconds, so a whole run fits in about a minute. Everything else is the default policy.
PROBATION_S = 15.0
ANALYSIS_INTERVAL_S = 3.0
# How long to wait for the pipeline before giving up (a healthy run needs ~30 s).
SETTLE_TIMEOUT_S = 90.0
POLL_S = 0.5
HTTP_TIMEOUT_S = 10.0
# Passes of honest agents over the desk's tickets.
HONEST_ROUNDS = 2
SEED = 20261124

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Actor:
    account_id: str
    population: str
    created_at: datetime
    ip: str


@dataclass
class Sent:
    """What the demo sent, per event, so outcomes can be scored against the truth."""

    population: dict[str, str] = field(default_factory=dict)  # event_id -> population
    labels: list[tuple[str, str, str]] = field(default_factory=list)  # (event, ticket, label)
    refused: int = 0


# --- traffic ------------------------------------------------------------------------------


def _actors(now: datetime, rng: random.Random) -> dict[str, list[Actor]]:
    def aged(days_min: int, days_max: int) -> datetime:
        return now - timedelta(days=rng.uniform(days_min, days_max))

    honest = [
        Actor(f"agent-{i}", "honest", aged(30, 1500), f"198.51.{i % 50}.{10 + i}")
        for i in range(60)
    ]
    campus = [Actor(f"student-{i}", "honest", aged(40, 900), "203.0.113.7") for i in range(20)]
    swarm = [
        Actor(f"new-user-{i:03d}", "swarm", now - timedelta(hours=rng.uniform(1, 20)),
              f"192.0.2.{rng.randrange(3)}")
        for i in range(40)
    ]  # fmt: skip
    flood = [Actor("bulk-fixer", "flood", now - timedelta(hours=2), "192.0.2.200")]
    sleepers = [
        Actor(f"old-timer-{i}", "sleeper", aged(200, 400), f"100.64.{i}.{i + 1}") for i in range(5)
    ]
    return {"honest": honest + campus, "swarm": swarm, "flood": flood, "sleeper": sleepers}


def _plan(
    truth: dict[str, str], labels: list[str], now: datetime, rng: random.Random
) -> Iterator[tuple[Actor, str, str]]:
    """(actor, ticket id, label) in sending order: attacks interleaved with honest work."""
    actors = _actors(now, rng)
    tickets = sorted(truth, key=lambda t: int(t[1:]))
    targets = [t for t in tickets if truth[t] == "billing"][:6]
    flipped = "shipping"  # the swarm wants billing complaints routed away from billing

    def wrong(ticket: str) -> str:
        return rng.choice([label for label in labels if label != truth[ticket]])

    honest: list[tuple[Actor, str, str]] = []
    # Each ticket is corrected by a few agents (a desk's agents work their own
    # queues), with a little label noise.
    for _ in range(HONEST_ROUNDS):
        for ticket in tickets:
            for actor in rng.sample(actors["honest"], rng.randint(1, 3)):
                label = truth[ticket] if rng.random() > 0.05 else rng.choice(labels)
                honest.append((actor, ticket, label))
    swarm = [(a, t, flipped) for a in actors["swarm"] for t in targets]
    flood = [(actors["flood"][0], t, wrong(t)) for t in rng.choices(tickets, k=150)]
    sleepers = [(a, t, flipped) for a in actors["sleeper"] for t in targets[:3]]
    rng.shuffle(honest)
    attacks = swarm + flood + sleepers
    # Honest traffic first and throughout; the attacks start a third of the way in.
    start = len(honest) // 3
    yield from honest[:start]
    rest = honest[start:]
    step = max(1, len(rest) // max(1, len(attacks)))
    merged: list[tuple[Actor, str, str]] = []
    attack_iter = iter(attacks)
    for i, item in enumerate(rest):
        merged.append(item)
        if i % step == 0:
            merged.extend(itertools.islice(attack_iter, 2))
    merged.extend(attack_iter)
    yield from merged


def _post(base: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the demo's own local server
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def drive(base: str, truth: dict[str, str], labels: list[str], echo: Echo) -> Sent:
    """Send the whole scenario to the desk's feedback endpoint."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    plan = list(_plan(truth, labels, now, rng))
    sent = Sent()
    for number, (actor, ticket, label) in enumerate(plan, start=1):
        event_id = f"demo-{number:05d}"
        status, _ = _post(
            base,
            f"/tickets/{ticket}/feedback",
            {"label": label},
            {
                "X-User": actor.account_id,
                "X-Account-Created": actor.created_at.isoformat(),
                "X-Forwarded-For": actor.ip,
                "Idempotency-Key": event_id,
            },
        )
        if status >= 400:
            sent.refused += 1
            continue
        sent.population[event_id] = actor.population
        sent.labels.append((event_id, ticket, label))
        if number % 200 == 0 or number == len(plan):
            echo(f"  sent {number:,}/{len(plan):,} corrections")
    return sent


# --- the run ------------------------------------------------------------------------------


def _serve(app: Any) -> tuple[BaseWSGIServer, str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="demo-http", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _shop(module: str) -> Any:
    """A module of the example desk: packaged inside feedbackguard's wheel
    (`feedbackguard.examples`), or `examples` of a source checkout."""
    try:
        return importlib.import_module(f"feedbackguard.examples.shop.{module}")
    except ModuleNotFoundError:
        return importlib.import_module(f"examples.shop.{module}")


def _shop_app(settings: Settings) -> Any:
    overrides = {
        "home": settings.home,
        "redis_url": settings.redis_url,
        "trusted_proxies": 1,  # the demo's clients say who they are in X-Forwarded-For
    }
    return _shop("app").create_app(overrides)


def _settle(r: redis.Redis[bytes], total: int, echo: Echo) -> None:
    """Wait until every sent event has a final status (probation included)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        stats = ledger.stats(r, NAMESPACE)
        waiting = inbox.backlog(r, NAMESPACE) + stats.get("pending", 0)
        line = (
            f"  decided {stats.get('decided', 0):,}/{total:,}, "
            f"waiting out probation {stats.get('pending', 0):,}"
        )
        if line != last:
            echo(line)
            last = line
        if stats.get("decided", 0) >= total and waiting == 0:
            return
        time.sleep(POLL_S)
    raise RuntimeError("the pipeline did not settle in time; see `feedbackguard worker` logs")


def run(
    settings: Settings,
    echo: Echo,
    keep_running: bool = False,
    wait: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the report it printed (for tests and `--json`).

    `wait`, when given, is called with the report after it is printed, while the desk
    and the review UI are still up (the command waits for Enter on a terminal)."""
    started = time.monotonic()
    home = (settings.home / DEMO_DIR).resolve()
    echo(f"feedbackguard demo: state under {home} (your own {settings.home} is untouched)")
    server_redis = EmbeddedRedis(home)
    url = server_redis.start()
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushall()  # the demo's private server: every run starts clean
    for stale in home.glob(f"{STORE_FILE_NAME}*"):
        stale.unlink()  # and so does the store
    demo = Settings(
        home=home,
        redis_url=url,
        clock="wall",
        pump_interval_s=0.2,
        policy_cache_s=0.5,
    )
    policy = Policy.default().model_copy(
        update={
            "probation_s": PROBATION_S,
            "analysis": Analysis(interval_s=ANALYSIS_INTERVAL_S, max_lag_s=PROBATION_S),
        }
    )
    PolicyStore(r).set(policy, author="demo")
    echo(f"  embedded Redis {url}; probation shortened to {PROBATION_S:g} s for the demo")
    workers = start_workers(1, demo, url)
    app = _shop_app(demo)
    http, base = _serve(app)
    echo(f"  example support desk at {base} (POST /tickets/<id>/feedback is guarded)")
    runtime = Runtime.build(demo)
    ui_http, ui_base = _serve(create_app(runtime))
    password = secrets.token_urlsafe(12)
    auth.add_user(r, MODERATOR, "moderator", password, actor="demo")
    review_ui = f"{ui_base}{demo.review_prefix.rstrip('/')}/?namespace={NAMESPACE}"
    echo(f"  review UI at {review_ui} (log in as {MODERATOR} / {password})")
    if keep_running:
        echo("  it stays up after the report, until Ctrl-C")
    elif wait is not None:
        echo("  it stays up after the report, until you press Enter")
    else:
        echo("  it is up while the demo runs (`--keep-running` keeps it up after the report)")
    try:
        desk = app.extensions["shop.desk"]
        truth = _truth(desk)
        echo("sending honest and hostile corrections over HTTP...")
        sent = drive(base, truth, desk.classifier.labels, echo)
        echo("waiting for the workers (rate limits, analysis, probation, release)...")
        _settle(r, len(sent.population), echo)
        report = _report(r, demo, sent, desk, truth)
        report["seconds"] = round(time.monotonic() - started, 1)
        report["review_ui"] = {"url": review_ui, "user": MODERATOR, "password": password}
        _print(report, echo)
        env = f"FEEDBACKGUARD_REDIS_URL={url} FEEDBACKGUARD_HOME={home}"
        if keep_running:
            echo(f"\nthe desk stays up at {base} and the review UI at {review_ui}")
            echo(f"(log in as {MODERATOR} / {password}); Ctrl-C to stop. Or, in another terminal:")
            echo(f"  {env} feedbackguard status")
            echo(f"  {env} feedbackguard review list --namespace {NAMESPACE}")
            echo(f"  {env} feedbackguard review approve|reject EVENT_ID... --namespace {NAMESPACE}")
            echo(f"  {env} feedbackguard accounts show new-user-000 --namespace {NAMESPACE}")
            while True:
                time.sleep(3600)
        if wait is not None:
            echo(f"\nthe review UI is still up at {review_ui} ({MODERATOR} / {password})")
            wait(report)
        elif report["review_waiting"]:
            echo("\nthe review UI stopped with the demo; `feedbackguard demo --keep-running`")
            echo("keeps it up to decide the items waiting for a moderator")
        return report
    finally:
        ui_http.shutdown()
        runtime.close()
        http.shutdown()
        stop_workers(workers)
        r.close()
        server_redis.stop()


def _truth(desk: Any) -> dict[str, str]:
    """The desk's seeded tickets and their true labels (the bundled data set)."""
    rows = _shop("model").load_tickets()
    return {f"t{i}": label for i, (_, label) in enumerate(rows, start=1) if f"t{i}" in desk.tickets}


# --- the report ---------------------------------------------------------------------------


def _report(
    r: redis.Redis[bytes], settings: Settings, sent: Sent, desk: Any, truth: dict[str, str]
) -> dict[str, Any]:
    ids = list(sent.population)
    records = ledger.load(r, NAMESPACE, ids)
    outcome: dict[str, Counter[str]] = {}
    reasons: dict[str, Counter[str]] = {}
    for event_id, record in zip(ids, records, strict=True):
        status = record.decision.status if record else "lost"
        population = sent.population[event_id]
        outcome.setdefault(population, Counter())[status] += 1
        if record and status in ("rejected", "review", "quarantined"):
            found = {reason.code for reason in record.decision.reasons}
            reasons.setdefault(population, Counter()).update(found)
    store = Store.from_settings(settings)
    admitted_ids = {item.event.event_id for item in store.iter_rows()}
    stored = store.count()
    store.close()
    impact = _model_impact(sent, admitted_ids, desk, truth)
    return {
        "events": len(ids),
        "refused_by_capture": sent.refused,
        "outcomes": {pop: dict(counts) for pop, counts in sorted(outcome.items())},
        "reasons": {pop: dict(counts.most_common()) for pop, counts in sorted(reasons.items())},
        "review_waiting": int(r.zcard(keys.review(NAMESPACE))),
        "store_rows": stored,
        "model": impact,
    }


def _model_impact(
    sent: Sent, admitted: set[str], desk: Any, truth: dict[str, str]
) -> dict[str, float]:
    """Retrain the desk's classifier on its data plus (a) the honest corrections only,
    as if there had been no attack, (b) every correction, attacks included, as with no
    defence, (c) only the admitted ones; accuracy on the bundled tickets' true labels."""
    model_module = _shop("model")
    base = model_module.load_tickets()
    texts = {f"t{i}": text for i, (text, _) in enumerate(base, start=1)}

    def accuracy(corrections: list[tuple[str, str, str]]) -> float:
        rows = base + [(texts[ticket], label) for _, ticket, label in corrections]
        model = model_module.TicketClassifier(rows)
        hits: int = sum(model.predict(texts[t]).label == label for t, label in truth.items())
        return round(hits / len(truth), 3)

    honest = [c for c in sent.labels if sent.population[c[0]] == "honest"]
    return {
        "accuracy_before_attack": accuracy(honest),
        "accuracy_no_defence": accuracy(sent.labels),
        "accuracy_feedbackguard": accuracy([c for c in sent.labels if c[0] in admitted]),
    }


# What each column of the report means (printed under the table).
LEGEND = (
    ("admitted", "passed every check and its probation: in the retraining store"),
    ("review", "held for a moderator (the review UI); in the store only if approved"),
    ("rejected", "stopped (rate limit, coordination, ...): never reaches the store"),
    ("quarantined", "admitted first, then caught by a later analysis: out of the store"),
)


# The model's accuracy after retraining on (report key, what it was retrained on).
ACCURACIES = (
    ("accuracy_before_attack", "the honest corrections only (before the attack)"),
    ("accuracy_no_defence", "everything sent (after the attack, no defence)"),
    ("accuracy_feedbackguard", "what feedbackguard admitted (after the attack)"),
)


def _print(report: dict[str, Any], echo: Echo) -> None:
    echo("")
    echo(f"{report['events']:,} corrections captured in {report['seconds']} s")
    header = (
        f"{'population':<10} {'sent':>6} {'admitted':>9} {'review':>7} "
        f"{'rejected':>9} {'quarantined':>12}"
    )
    echo(header)
    echo("-" * len(header))
    for population, counts in report["outcomes"].items():
        echo(
            f"{population:<10} {sum(counts.values()):>6} {counts.get('admitted', 0):>9} "
            f"{counts.get('review', 0):>7} {counts.get('rejected', 0):>9} "
            f"{counts.get('quarantined', 0):>12}"
        )
    echo("")
    for column, meaning in LEGEND:
        echo(f"  {column:<12} {meaning}")
    echo("")
    echo("why, per population: the reason codes of the events not admitted (an event")
    echo("can carry several reasons, so they add up to more than the events)")
    for population, counts in report["reasons"].items():
        echo(f"  {population}: " + ", ".join(f"{code} x{n}" for code, n in counts.items()))
    echo(f"waiting for a moderator: {report['review_waiting']}")
    echo(f"rows in the retraining store: {report['store_rows']}")
    model = report["model"]
    echo("the desk model's accuracy on the tickets' true labels, retrained on:")
    for key, what in ACCURACIES:
        echo(f"  {what:<50} {model[key]:>6.1%}")


def default_settings() -> Settings:
    """Settings for the demo: the environment's, but never its servers."""
    env = {k: v for k, v in os.environ.items() if k.startswith("FEEDBACKGUARD_")}
    home = Path(env.get("FEEDBACKGUARD_HOME", Settings().home))
    return Settings(home=home, redis_url=None, store_url=None)
