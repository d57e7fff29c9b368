"""Incremental analysis decides exactly what a full recompute at every run decides.

A seeded simulated stream (label flipping among honest traffic, so the kNN re-check,
the unreliable labellers and the graph all have something to find) is replayed in
process on event time (`pipeline.stepped`: the same batches, analysis runs and
releases for both), once with the analysers incremental (the `analysis` setting's
default) and once recomputing everything at every run, and the final status of every
event is compared, event by event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from feedbackguard import keys
from feedbackguard.consistency import knn
from feedbackguard.pipeline import ledger, stepped
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import AnalysisMode
from feedbackguard.simulate import QUICK, Simulation, generate
from feedbackguard.store import Store

NS = "default"
# Small enough for the suite, long enough for several analysis runs over a window
# that both gains and loses events.
HONEST = replace(QUICK, events=3000, accounts=450, span_days=3.0)
# Events per ingest chunk: one analysis run per chunk at most.
CHUNK = 250


@pytest.fixture(scope="module")
def stream() -> Simulation:
    return generate("noise", seed=7, honest=HONEST, namespace=NS)


def replay(
    r: redis.Redis[bytes], store_url: str, sim: Simulation, mode: AnalysisMode
) -> tuple[list[str], Counter[str]]:
    """Each event's final status after a stepped replay with analysis `mode`, and how
    often each reason code is on the events' final decisions."""
    r.flushdb()
    knn.forget(NS)  # the fitted reference a worker keeps: none from the other replay
    with Store(store_url, b"k" * 32) as store:
        pipeline = Pipeline(
            r=r,
            store=store,
            policies=PolicyStore(r, cache_s=0),
            checks=default_checks(),
            analysers=default_analysers(mode),
        )
        ids = [e.event_id for e in sim.events]
        stepped.run(pipeline, NS, sim.events, chunk=CHUNK)
        statuses = stepped.statuses(pipeline, NS, ids)
        codes: Counter[str] = Counter()
        for record in r.mget([keys.record(NS, e) for e in ids]):
            if record is not None:
                codes.update(ledger.last_reasons(record))
    return statuses, codes


def test_incremental_analysis_decides_every_event_as_a_full_recompute(
    r: redis.Redis[bytes], tmp_path: Path, stream: Simulation
) -> None:
    incremental, found = replay(r, f"sqlite:///{tmp_path / 'inc.db'}", stream, "incremental")
    full, _ = replay(r, f"sqlite:///{tmp_path / 'full.db'}", stream, "full")
    # The stream exercises what analysis decides: the kNN re-check and the graph.
    assert found["consistency.knn"] > 0
    assert set(incremental) - {"admitted"}
    differing = [
        (event.event_id, a, b)
        for event, a, b in zip(stream.events, incremental, full, strict=True)
        if a != b
    ]
    assert differing == [], f"{len(differing)} events decided otherwise: {differing[:5]}"
