"""Review queue latency with 100,000 items waiting in 5,000 cases: list, claim, decide.

Fills a namespace's review queue the way the pipeline does when it sends items to
review (`state.apply`: records, the review set, `queue.index` and the case index for
each item): one 5,000-event group case (500 accounts) and 4,999 account cases of ~19
events each, every event with a harm estimate. Then measures, for cases:

- case list: one page of 50 cases as the API builds it (`cases.page` in triage order +
  `cases.load` of the 50), from the top and from random cursors; by reason code, by
  kind and by mean risk; and the JSON endpoint end to end (Flask test client);
- case claim: `cases.claim` of the next case by one of 20 moderators in turn;
- deciding the 5,000-event group case in one action (`casework.decide`, reject) and
  undoing it (`casework.undo`);

and, as before cases, for single events:

- list: one page of 50 as the API builds it (`queue.page` + loading the 50 records +
  their lease holders), from the head and from random cursors deep in the queue;
  without a filter, by reason code (1 in 5 items), by account, and by risk range;
  also the JSON endpoint end to end through Flask's test client (API-key auth);
- claim: `queue.claim` of one item by one of 20 moderators in turn (leases accumulate);
- bulk reject: every item in review of a 5,000-item cluster (500 accounts):
  `queue.all_ids` (cluster filter) + `moderation.moderate(..., approve=False)`;
- lazy catch-up: `ensure_indexed` and `cases.catch_up` on a queue of 100,000 never
  indexed (no hook).

Runs on a private Redis (embedded unless --redis-url; that database is FLUSHED) and a
SQLite store in a temporary directory.

    python benchmarks/review_queue.py [--items 100000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis
from flask import Flask
from flask.testing import FlaskClient

from feedbackguard import accounts, keys
from feedbackguard.decisions import Decision
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger, state
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy.store import PolicyStore
from feedbackguard.reasons import Reason
from feedbackguard.review import cases, casework, moderation, queue
from feedbackguard.settings import Settings
from feedbackguard.store import Store
from feedbackguard.web import auth
from feedbackguard.web.context import init_runtime
from feedbackguard.web.review import create_review_blueprint

NS = "bench"
# Account-level codes (no item case): 4,999 account cases and the group's.
CODES = [
    "coordination.lockstep",
    "sybil.trust",
    "consistency.reputation",
    "outlier",
    "trigger.known",
]
GROUP = "coordination.lockstep:bench"
ACCOUNT_CASES = 4999
PAGE = 50
CLUSTER_ITEMS = 5000
CLUSTER_ACCOUNTS = 500
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def fill(r: redis.Redis[bytes], items: int, hook: bool, seed: int = 7) -> list[str]:
    """Put `items` events in review; the first CLUSTER_ITEMS come from the cluster's
    accounts (spread over time). Returns the event ids."""
    rng = random.Random(seed)
    ids: list[str] = []
    chunk = 2000
    for start in range(0, items, chunk):
        changes: list[state.Change] = []
        for n in range(start, min(items, start + chunk)):
            if n < CLUSTER_ITEMS:
                account = f"swarm-{n % CLUSTER_ACCOUNTS}"
            else:
                account = f"acct-{n % ACCOUNT_CASES}"
            event = FeedbackEvent.model_validate(
                {
                    "event_id": f"ev-{n:07d}",
                    "namespace": NS,
                    "kind": "label",
                    "account_id": account,
                    "item_id": f"item-{rng.randrange(5000)}",
                    "value": "spam",
                    "received_at": T0 + timedelta(seconds=rng.uniform(0, 7 * 86400)),
                }
            )
            score = rng.uniform(0.5, 0.89)
            group = GROUP if n < CLUSTER_ITEMS else ""
            decision = Decision(
                event_id=event.event_id,
                status="review",
                risk=score,
                harm=rng.uniform(0.0, 1.0),
                reasons=(Reason(CODES[n % len(CODES)], "bench", score, group),),
                policy_version=1,
            )
            record = ledger.RawRecord(event.to_json(), [decision.model_dump(mode="json")])
            changes.append(
                state.change(record, account_id=account, received_at=event.received_at.timestamp())
            )
            ids.append(event.event_id)
        pipe = r.pipeline(transaction=False)
        state.apply(pipe, NS, changes, ttl_s=86400)
        pipe.execute()
    if not hook:  # no index nor cases yet, only the review set: they catch up
        index_keys = list(r.scan_iter(match=keys.review_indexed(NS).rsplit(":", 1)[0] + ":*"))
        index_keys += list(r.scan_iter(match=keys.ns(NS, "case", "*")))
        for start in range(0, len(index_keys), 1000):
            r.delete(*index_keys[start : start + 1000])
    return ids


def p99_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(float(np.percentile(times, 99)) * 1000, 2)


def list_page(r: redis.Redis[bytes], filters: queue.Filters, cursor: str | None) -> None:
    found = queue.page(r, NS, filters, cursor=cursor, limit=PAGE)
    ledger.load(r, NS, found.ids)
    queue.holders(r, NS, found.ids)
    assert len(found.ids) == PAGE, (filters, len(found.ids))


def case_page(r: redis.Redis[bytes], filters: cases.Filters, cursor: str | None) -> None:
    found = cases.page(r, NS, filters, cursor=cursor, limit=PAGE)
    loaded = cases.load(r, NS, found.ids)
    assert len(loaded) == PAGE, (filters, len(loaded))


def measure_cases(
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    client: FlaskClient,
    headers: dict[str, str],
    runs: int,
    results: dict[str, object],
) -> None:
    """List, claim, and decide and undo the group case in one action."""
    rng = random.Random(2)
    ranked = r.zrevrange(keys.case_by_harm(NS), 0, -1, withscores=True)

    def random_cursor() -> str:
        case_id, score = ranked[rng.randrange(len(ranked) - 2 * PAGE)]
        return f"{score!r}|{case_id.decode()}"

    top = cases.Filters()
    results["case_list_p99_ms"] = max(
        p99_ms(lambda: case_page(r, top, None), runs),
        p99_ms(lambda: case_page(r, top, random_cursor()), runs),
    )
    by_reason = cases.Filters(reason=CODES[1])
    by_risk = cases.Filters(risk_min=0.7)
    by_kind = cases.Filters(kind="a")
    results["case_list_filtered_p99_ms"] = max(
        p99_ms(lambda: case_page(r, by_reason, None), runs),
        p99_ms(lambda: case_page(r, by_risk, None), runs),
        p99_ms(lambda: case_page(r, by_kind, random_cursor()), runs),
    )
    results["case_list_account_p99_ms"] = p99_ms(
        lambda: cases.page(r, NS, cases.Filters(account="swarm-7"), limit=PAGE), runs
    )

    def api_list() -> None:
        resp = client.get(f"/review/api/cases?namespace={NS}&limit={PAGE}", headers=headers)
        assert resp.status_code == 200
        assert len(resp.get_json()["cases"]) == PAGE

    results["case_list_api_p99_ms"] = p99_ms(api_list, min(runs, 300))

    moderators = [f"mod-{k}" for k in range(20)]
    turn = iter(range(10**9))

    def claim() -> None:
        who = moderators[next(turn) % len(moderators)]
        assert cases.claim(r, NS, who, lease_s=300) is not None

    results["case_claim_p99_ms"] = p99_ms(claim, runs)
    r.delete(keys.case_leases(NS), keys.case_holders(NS))
    group = cases.page(r, NS, cases.Filters(kind="g")).ids[0]
    t = time.perf_counter()
    done = casework.decide(pipeline, NS, group, "bench", "reject", keep_s=3600)
    results["case_decide_5000_s"] = round(time.perf_counter() - t, 3)
    assert len(done.rejected) == CLUSTER_ITEMS, len(done.rejected)
    t = time.perf_counter()
    undone = casework.undo(pipeline, NS, done.action_id, "bench", window_s=3600)
    results["case_undo_5000_s"] = round(time.perf_counter() - t, 3)
    assert len(undone.undone) == CLUSTER_ITEMS
    assert cases.check(r, NS) == []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-bench-review-"))
    server = None if args.redis_url else EmbeddedRedis(home)
    url = args.redis_url or (server.start() if server else "")
    r: redis.Redis[bytes] = redis.Redis.from_url(url)
    r.flushdb()
    results: dict[str, object] = {"items": args.items, "page": PAGE}

    # Lazy catch-up: a full queue that was never indexed.
    fill(r, args.items, hook=False)
    t = time.perf_counter()
    queue.ensure_indexed(r, NS, sync_s=5, force=True)
    results["lazy_index_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    queue.ensure_indexed(r, NS, sync_s=5, force=True)
    results["sync_check_in_step_ms"] = round((time.perf_counter() - t) * 1000, 1)
    t = time.perf_counter()
    cases.catch_up(r, NS)
    results["cases_catch_up_s"] = round(time.perf_counter() - t, 2)
    r.flushdb()
    t = time.perf_counter()
    fill(r, args.items, hook=True)
    results["fill_with_index_s"] = round(time.perf_counter() - t, 2)
    results["cases"] = cases.open_count(r, NS)

    rng = random.Random(1)
    all_ids = [raw.decode() for raw in r.zrange(keys.review(NS), 0, -1, withscores=False)]
    scores = {i: s for i, s in r.zrange(keys.review(NS), 0, -1, withscores=True)}

    def random_cursor(limit_from_end: int = 5 * PAGE) -> str:
        pick = all_ids[rng.randrange(len(all_ids) - limit_from_end)]
        return f"{scores[pick.encode()]!r}|{pick}"

    head = queue.Filters()
    results["list_p99_ms"] = max(
        p99_ms(lambda: list_page(r, head, None), args.runs),
        p99_ms(lambda: list_page(r, head, random_cursor()), args.runs),
    )
    by_reason = queue.Filters(reason=CODES[1])
    results["list_reason_p99_ms"] = max(
        p99_ms(lambda: list_page(r, by_reason, None), args.runs),
        p99_ms(lambda: list_page(r, by_reason, random_cursor(10 * PAGE * len(CODES))), args.runs),
    )
    by_risk = queue.Filters(risk_min=0.8)
    results["list_risk_p99_ms"] = p99_ms(lambda: list_page(r, by_risk, None), args.runs)
    by_account = queue.Filters(account="swarm-7")
    results["list_account_p99_ms"] = p99_ms(
        lambda: queue.page(r, NS, by_account, limit=PAGE), args.runs
    )
    results["list_filtered_p99_ms"] = max(
        float(str(results["list_reason_p99_ms"])), float(str(results["list_risk_p99_ms"]))
    )

    with Store(f"sqlite:///{home / 'store.db'}", b"k" * 32) as store:
        pipeline = Pipeline(r=r, store=store, policies=PolicyStore(r, cache_s=5), checks=[])
        settings = Settings(home=home, redis_url=url)
        app = Flask(__name__)
        app.secret_key = secrets.token_hex(16)
        init_runtime(app, Runtime(settings=settings, redis=r, pipeline=pipeline, consumer="b"))
        app.register_blueprint(create_review_blueprint(), url_prefix="/review")
        _, secret = auth.add_key(r, "bench", "moderator")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"}

        def api_list() -> None:
            resp = client.get(f"/review/api/items?namespace={NS}&limit={PAGE}", headers=headers)
            assert resp.status_code == 200
            assert len(resp.get_json()["items"]) == PAGE

        results["list_api_p99_ms"] = p99_ms(api_list, min(args.runs, 300))

        moderators = [f"mod-{k}" for k in range(20)]
        turn = iter(range(10**9))

        def claim() -> None:
            who = moderators[next(turn) % len(moderators)]
            assert len(queue.claim(r, NS, who, lease_s=300)) == 1

        results["claim_p99_ms"] = p99_ms(claim, args.runs)
        measure_cases(r, pipeline, client, headers, args.runs, results)

        accounts.replace_findings(
            r,
            NS,
            [],
            [
                (
                    "swarm",
                    {
                        "members": [f"swarm-{k}" for k in range(CLUSTER_ACCOUNTS)],
                        "items": [],
                        "code": "sybil.dense",
                    },
                )
            ],
        )
        # Nobody holds leases on the cluster's items for this measure.
        r.delete(keys.review_leases(NS), keys.review_holders(NS))
        t = time.perf_counter()
        ids = queue.all_ids(r, NS, queue.Filters(cluster="swarm"))
        outcome = moderation.moderate(pipeline, NS, ids, approve=False, actor="bench")
        results["bulk_reject_5000_s"] = round(time.perf_counter() - t, 3)
        assert len(outcome.rejected) == CLUSTER_ITEMS, len(outcome.rejected)
        results["bulk_rejected"] = len(outcome.rejected)
    r.flushdb()
    if server:
        server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
