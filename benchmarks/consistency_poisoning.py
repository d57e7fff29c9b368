"""Poisoning through the real pipeline: label flipping and a pixel-pattern backdoor.

On scikit-learn's bundled digits (8x8 images, 10 classes) and breast-cancer (30
features, 2 classes) data, in-process on a private embedded Redis and a SQLite store:

* the data is split (stratified) into a *seed* set (the product's own training data:
  its model gives every event's `model_output`, and it seeds the kNN reference), a
  feedback *pool* and a *test* set;
* 60 honest, aged accounts label every pool sample correctly, twice (two accounts),
  over 12 hours of event time;
* 6 attacker accounts (a minority; aged too, so account age does not give them away)
  either flip labels (10 / 20 / 40 % of the stream: a wrong label on a pool sample)
  or plant a backdoor: non-target pool samples with a trigger (digits: the four corner
  pixels set to 16, the maximum; breast cancer: three features set to their maximum)
  labelled as the target class; their `model_output` is what the clean seed model says
  of the triggered input;
* the stream goes through the real `Pipeline` (every default check and analyser,
  default policy; analysis every 5 minutes of event time, release after probation),
  and through a pipeline with the rate limits only. No moderator acts: review is not
  admitted.

A logistic regression is retrained on seed + admitted feedback (the store's rows), and
on seed + every event (no defence), and on seed + the honest events only (oracle).
Reported: per reason code the detection precision/recall over attack events; clean
accuracy on the test set; attack success rate (ASR: test inputs of other classes with
the trigger, classified as the target); honest events sent to review, rejected or
quarantined. The last line is one JSON object.

    python benchmarks/consistency_poisoning.py
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import redis
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from feedbackguard import inbox_writer
from feedbackguard.checks.base import Analyser, Check, CheckContext
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.consistency import knn
from feedbackguard.consistency.ingest import consistency_checks
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph.window import value_key
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.store import Store

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SPAN_S = 12 * 3600.0
BATCH = 200
HONEST_ACCOUNTS = 60
ATTACKERS = 6
LABELS_PER_SAMPLE = 2
BACKDOOR_SHARE = 0.08  # poison events per honest event
FLIP_RATES = (0.1, 0.2, 0.4)

Array = npt.NDArray[np.float64]


class Dataset:
    def __init__(
        self,
        name: str,
        x: Array,
        y: npt.NDArray[np.int64],
        trigger: dict[int, float],
        target: int,
        seed: int = 0,
    ) -> None:
        self.name, self.trigger, self.target = name, trigger, target
        x_rest, self.x_test, y_rest, self.y_test = train_test_split(
            x, y, test_size=0.25, stratify=y, random_state=seed
        )
        self.x_seed, self.x_pool, self.y_seed, self.y_pool = train_test_split(
            x_rest, y_rest, test_size=0.6, stratify=y_rest, random_state=seed
        )
        self.classes = sorted(set(y.tolist()))
        self.model = fit(self.x_seed, self.y_seed)

    def stamp(self, x: Array) -> Array:
        out = np.array(x, dtype=np.float64, copy=True)
        for index, value in self.trigger.items():
            out[..., index] = value
        return out


def fit(x: Array, y: npt.NDArray[np.int64]) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(x, y)


def digits() -> Dataset:
    x, y = load_digits(return_X_y=True)
    corners = {0: 16.0, 7: 16.0, 56: 16.0, 63: 16.0}
    return Dataset("digits", x, y, corners, target=7)


def cancer() -> Dataset:
    x, y = load_breast_cancer(return_X_y=True)
    top = x.max(axis=0)
    return Dataset("cancer", x, y, {i: float(top[i]) for i in (9, 14, 19)}, target=0)


DATASETS: dict[str, Callable[[], Dataset]] = {"digits": digits, "cancer": cancer}


def _event(
    ds: Dataset,
    account: str,
    created: datetime,
    item: str,
    features: Array,
    value: int,
    at: float,
    ip: str,
) -> FeedbackEvent:
    proba = ds.model.predict_proba(features.reshape(1, -1))[0]
    best = int(np.argmax(proba))
    return FeedbackEvent(
        namespace=ds.name,
        kind="label",
        account_id=account,
        account_created_at=created,
        item_id=item,
        value=value,
        model_output={"label": int(ds.model.classes_[best]), "confidence": float(proba[best])},
        payload={"features": [float(v) for v in features]},
        ip=ip,
        received_at=T0 + timedelta(seconds=at),
    )


def honest(ds: Dataset, rng: random.Random) -> list[FeedbackEvent]:
    created = [T0 - timedelta(days=rng.uniform(60, 1500)) for _ in range(HONEST_ACCOUNTS)]
    out = []
    for i, (x, y) in enumerate(zip(ds.x_pool, ds.y_pool, strict=True)):
        for a in rng.sample(range(HONEST_ACCOUNTS), LABELS_PER_SAMPLE):
            out.append(
                _event(
                    ds,
                    f"h{a}",
                    created[a],
                    f"{ds.name}-{i}",
                    x,
                    int(y),
                    rng.uniform(0, SPAN_S),
                    f"10.{a}.{a % 7}.{a + 1}",
                )
            )
    return out


def attackers(rng: random.Random) -> list[tuple[str, datetime, str]]:
    return [
        (f"x{a}", T0 - timedelta(days=rng.uniform(10, 400)), f"172.16.{a}.{a + 9}")
        for a in range(ATTACKERS)
    ]


def flips(ds: Dataset, rate: float, n_honest: int, rng: random.Random) -> list[FeedbackEvent]:
    count = round(rate / (1 - rate) * n_honest)
    who = attackers(rng)
    out = []
    for _ in range(count):
        i = rng.randrange(len(ds.x_pool))
        wrong = rng.choice([c for c in ds.classes if c != ds.y_pool[i]])
        name, created, ip = rng.choice(who)
        out.append(
            _event(
                ds, name, created, f"{ds.name}-{i}", ds.x_pool[i], wrong, rng.uniform(0, SPAN_S), ip
            )
        )
    return out


def camouflaged(ds: Dataset, n_honest: int, rng: random.Random) -> list[FeedbackEvent]:
    """20 % flipped labels, each attacker also labelling as many pool samples correctly
    (its agreement stays near one half). Only the flipped ones count as attack events."""
    bad = flips(ds, 0.2, n_honest, rng)
    who = attackers(rng)
    cover = []
    for _ in range(len(bad)):
        i = rng.randrange(len(ds.x_pool))
        name, created, ip = rng.choice(who)
        cover.append(
            _event(
                ds,
                name,
                created,
                f"{ds.name}-{i}",
                ds.x_pool[i],
                int(ds.y_pool[i]),
                rng.uniform(0, SPAN_S),
                ip,
            )
        )
    return bad + [e.model_copy(update={"item_id": e.item_id + "-c"}) for e in cover]


def backdoor(ds: Dataset, n_honest: int, rng: random.Random) -> list[FeedbackEvent]:
    count = round(BACKDOOR_SHARE * n_honest)
    who = attackers(rng)
    others = [i for i in range(len(ds.x_pool)) if ds.y_pool[i] != ds.target]
    out = []
    for n in range(count):
        i = rng.choice(others)
        name, created, ip = rng.choice(who)
        out.append(
            _event(
                ds,
                name,
                created,
                f"{ds.name}-{i}-t{n}",
                ds.stamp(ds.x_pool[i]),
                ds.target,
                rng.uniform(0, SPAN_S),
                ip,
            )
        )
    return out


def run(
    r: redis.Redis[bytes],
    home: Path,
    ds: Dataset,
    stream: list[FeedbackEvent],
    checks: list[Check],
    analysers: list[Analyser],
) -> tuple[dict[str, Any], list[tuple[list[float], int]]]:
    """Push the stream through a pipeline; (final record per event id, admitted rows)."""
    r.flushdb()
    if analysers:
        knn.seed_reference(r, ds.name, ds.x_seed, [value_key(int(v)) for v in ds.y_seed])
    db = home / f"{ds.name}-{len(checks)}-{time.monotonic_ns()}.db"
    with Store(f"sqlite:///{db}", b"k" * 32) as store:
        pipeline = Pipeline(
            r=r,
            store=store,
            policies=PolicyStore(r, cache_s=60),
            checks=checks,
            analysers=analysers,
            batch_size=BATCH,
        )
        policy = pipeline.policies.current().policy
        interval = policy.analysis.interval_s
        next_analysis = stream[0].received_at.timestamp() + interval
        for i in range(0, len(stream), BATCH):
            chunk = stream[i : i + BATCH]
            pipe = r.pipeline(transaction=False)
            inbox_writer.append(pipe, chunk)
            pipe.execute()
            while pipeline.ingest_batch(ds.name, "bench").entries:
                pass
            if chunk[-1].received_at.timestamp() >= next_analysis:
                pipeline.analyse(ds.name)
                while pipeline.release(ds.name):
                    pass
                next_analysis += interval
        end = stream[-1].received_at.timestamp() + policy.probation_s + interval
        pipe = r.pipeline()
        ledger.advance_clock(pipe, ds.name, end)
        pipe.execute()
        pipeline.analyse(ds.name)
        while pipeline.release(ds.name):
            pass
        rows = [
            (item.event.payload.features, int(item.event.value))  # type: ignore[union-attr,arg-type]
            for item in store.iter_rows()
            if not item.quarantined
        ]
    ids = [e.event_id for e in stream]
    records = dict(zip(ids, ledger.load(r, ds.name, ids), strict=True))
    return records, rows


def evaluate(ds: Dataset, extra: list[tuple[list[float], int]]) -> dict[str, float]:
    x = np.vstack([ds.x_seed, np.array([f for f, _ in extra]).reshape(-1, ds.x_seed.shape[1])])
    y = np.concatenate([ds.y_seed, np.array([v for _, v in extra], dtype=np.int64)])
    model = fit(x, y)
    others = ds.y_test != ds.target
    return {
        "clean_acc": round(float((model.predict(ds.x_test) == ds.y_test).mean()), 4),
        "asr": round(float((model.predict(ds.stamp(ds.x_test[others])) == ds.target).mean()), 4),
    }


def detection(records: dict[str, Any], attack: set[str]) -> dict[str, Any]:
    """Per reason code and overall: precision / recall of flagging attack events; and
    the share of honest events not admitted."""
    flagged: dict[str, set[str]] = {}
    blocked: set[str] = set()
    for event_id, rec in records.items():
        if rec is None:
            continue
        if rec.decision.status != "admitted":
            blocked.add(event_id)
        for reason in rec.decision.reasons:
            flagged.setdefault(reason.code, set()).add(event_id)
    honest_n = len(records) - len(attack)

    def pr(found: set[str]) -> dict[str, float]:
        hits = len(found & attack)
        return {
            "precision": round(hits / len(found), 4) if found else 0.0,
            "recall": round(hits / len(attack), 4) if attack else 0.0,
            "events": len(found),
        }

    return {
        "blocked": pr(blocked),
        "by_code": {code: pr(ids) for code, ids in sorted(flagged.items())},
        "honest_flagged": round(len(blocked - attack) / honest_n, 4),
        "statuses": dict(Counter(rec.decision.status for rec in records.values() if rec)),
    }


def scenario(
    r: redis.Redis[bytes],
    home: Path,
    ds: Dataset,
    name: str,
    make: Callable[[int, random.Random], list[FeedbackEvent]],
) -> dict[str, Any]:
    rng = random.Random(f"{ds.name}-{name}")
    good = honest(ds, rng)
    bad = make(len(good), rng)
    cover = [e for e in bad if e.item_id.endswith("-c")]  # camouflage: correct labels
    attack = {e.event_id for e in bad if not e.item_id.endswith("-c")}
    stream = sorted(good + bad, key=lambda e: e.received_at)
    label = [(e.payload.features, int(e.value)) for e in stream]  # type: ignore[union-attr,arg-type]
    clean = [(e.payload.features, int(e.value)) for e in good + cover]  # type: ignore[union-attr,arg-type]
    hidden = {e.event_id for e in cover}

    def without(records: dict[str, Any]) -> dict[str, Any]:
        """Detection figures leave the attackers' camouflage labels out."""
        return {k: v for k, v in records.items() if k not in hidden}

    started = time.perf_counter()
    full, admitted = run(r, home, ds, stream, default_checks(), default_analysers())
    full_s = time.perf_counter() - started
    limited, admitted_rl = run(r, home, ds, stream, [RateLimitCheck()], [])
    out = {
        "events": len(stream),
        "attack_events": len(attack),
        "oracle": evaluate(ds, clean),
        "no_defence": evaluate(ds, label),
        "ratelimit_only": {**evaluate(ds, admitted_rl), **detection(without(limited), attack)},
        "full": {**evaluate(ds, admitted), **detection(without(full), attack)},
        "seconds": round(full_s, 1),
    }
    print(
        f"{ds.name:7s} {name:9s} events={len(stream):5d} attack={len(attack):4d} "
        f"acc oracle={out['oracle']['clean_acc']:.3f} none={out['no_defence']['clean_acc']:.3f} "
        f"rl={out['ratelimit_only']['clean_acc']:.3f} full={out['full']['clean_acc']:.3f} | "
        f"asr none={out['no_defence']['asr']:.3f} rl={out['ratelimit_only']['asr']:.3f} "
        f"full={out['full']['asr']:.3f} | blocked P/R={out['full']['blocked']['precision']:.3f}/"
        f"{out['full']['blocked']['recall']:.3f} "
        f"honest_flagged={out['full']['honest_flagged']:.4f} "
        f"({full_s:.1f}s)",
        flush=True,
    )
    for code, figures in out["full"]["by_code"].items():
        print(
            f"    {code:24s} P={figures['precision']:.3f} R={figures['recall']:.3f} "
            f"n={figures['events']}",
            flush=True,
        )
    return out


def check_cost(r: redis.Redis[bytes], reference: int = 20_000) -> dict[str, float]:
    """Microseconds per event of each consistency-layer check on batches of 500 digits
    events, with a kNN reference of `reference` rows (the policy's default maximum)."""
    r.flushdb()
    ds = digits()
    rng = np.random.default_rng(0)
    repeat = -(-reference // len(ds.x_seed))
    x = np.repeat(ds.x_seed, repeat, axis=0)[:reference]
    x = x + rng.normal(0, 0.5, x.shape)
    y = np.repeat(ds.y_seed, repeat)[:reference]
    knn.seed_reference(r, ds.name, x, [value_key(int(v)) for v in y])
    events = honest(ds, random.Random(0))[:500]
    ctx = CheckContext(redis=r, policy=Policy.default(), namespace=ds.name)
    out = {}
    for check in consistency_checks():
        check(events, ctx)  # warm: fits the reference once
        started = time.perf_counter()
        for _ in range(5):
            check(events, ctx)
        out[check.name] = round((time.perf_counter() - started) / 5 / len(events) * 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="digits,cancer")
    parser.add_argument("--scenarios", default="flip10,flip20,flip40,camo20,backdoor")
    args = parser.parse_args()
    wanted = set(args.scenarios.split(","))
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = EmbeddedRedis(home / "redis")
        r = redis.Redis.from_url(server.start())
        try:
            cost = check_cost(r)
            print(f"check cost (us/event, batch 500, 20k reference): {cost}", flush=True)
            for ds in (make() for name, make in DATASETS.items() if name in args.datasets):
                results[ds.name] = {}
                for rate in FLIP_RATES:
                    if f"flip{int(rate * 100)}" not in wanted:
                        continue
                    results[ds.name][f"flip{int(rate * 100)}"] = scenario(
                        r,
                        home,
                        ds,
                        f"flip{int(rate * 100)}",
                        lambda n, rng, rate=rate, ds=ds: flips(ds, rate, n, rng),
                    )
                if "camo20" in wanted:
                    results[ds.name]["camo20"] = scenario(
                        r, home, ds, "camo20", lambda n, rng, ds=ds: camouflaged(ds, n, rng)
                    )
                if "backdoor" in wanted:
                    results[ds.name]["backdoor"] = scenario(
                        r, home, ds, "backdoor", lambda n, rng, ds=ds: backdoor(ds, n, rng)
                    )
        finally:
            r.close()
            server.stop()
    doors = [results[name]["backdoor"] for name in results if "backdoor" in results[name]]
    if not doors:
        return
    every = [s for name in results for s in results[name].values()]
    summary = {
        "backdoor_asr": max(d["full"]["asr"] for d in doors),
        "backdoor_asr_no_defence": min(d["no_defence"]["asr"] for d in doors),
        "backdoor_asr_ratelimit_only": min(d["ratelimit_only"]["asr"] for d in doors),
        "clean_acc": min(d["full"]["clean_acc"] for d in doors),
        "clean_acc_oracle": min(d["oracle"]["clean_acc"] for d in doors),
        "clean_acc_gap_max": round(
            max(d["oracle"]["clean_acc"] - d["full"]["clean_acc"] for d in doors), 4
        ),
        "honest_flagged": max(s["full"]["honest_flagged"] for s in every),
        "per_dataset": {
            name: {
                scen: {
                    "clean_acc": {
                        "oracle": s["oracle"]["clean_acc"],
                        "no_defence": s["no_defence"]["clean_acc"],
                        "ratelimit_only": s["ratelimit_only"]["clean_acc"],
                        "full": s["full"]["clean_acc"],
                    },
                    "asr": {
                        "no_defence": s["no_defence"]["asr"],
                        "ratelimit_only": s["ratelimit_only"]["asr"],
                        "full": s["full"]["asr"],
                    },
                    "blocked": s["full"]["blocked"],
                    "ratelimit_blocked": s["ratelimit_only"]["blocked"],
                    "by_code": s["full"]["by_code"],
                    "honest_flagged": s["full"]["honest_flagged"],
                    "events": s["events"],
                    "attack_events": s["attack_events"],
                }
                for scen, s in scenarios.items()
            }
            for name, scenarios in results.items()
        },
        "check_us_per_event": cost,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
