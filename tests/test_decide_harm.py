"""Decisions by suspicion and harm, through the real pipeline (every default check
and analyser): who sent feedback never rejects it alone; what it would change does.

The world: items of two labels ("0", "1") whose features are drawn around their
label's centre, a kNN reference seeded with trusted labelled inputs, a confident
product model, and old honest accounts labelling items over two days.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np
import pytest
import redis

from feedbackguard import accounts, inbox_writer, keys
from feedbackguard.consistency import knn, unreliable
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.decide import MISTAKE, decide, group_harm
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Policy
from feedbackguard.reasons import Reason
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"
HOUR = 3600.0
OLD = T0 - timedelta(days=400)
WIDTH = 8


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(checks=default_checks(), analysers=default_analysers())


class World:
    """Items with features and a truth, and the events accounts send about them."""

    def __init__(self, r: redis.Redis[bytes], make_event: MakeEvent, seed: int = 0) -> None:
        self.make_event = make_event
        self.rng = np.random.default_rng(seed)
        self.truth = {f"item-{i}": str(i % 2) for i in range(200)}
        self.x = {item: self.features(label) for item, label in self.truth.items()}
        seed_labels = [str(i % 2) for i in range(200)]
        knn.seed_reference(
            r,
            NS,
            np.array([self.features(y) for y in seed_labels]),
            [f"str:{y!r}" for y in seed_labels],
        )

    def features(self, label: str) -> list[float]:
        centre = 0.0 if label == "0" else 4.0
        return [float(v) for v in self.rng.normal(centre, 1.0, WIDTH)]

    def label(
        self,
        account: str,
        item: str,
        at_h: float,
        value: str | None = None,
        said: str | None = None,
        created: object = OLD,
        **fields: object,
    ) -> FeedbackEvent:
        """`account` labels `item` (its truth unless `value`); the model says `said`
        (the truth by default) with confidence 0.95."""
        truth = self.truth[item]
        return self.make_event(
            at=at_h * HOUR,
            account_id=account,
            account_created_at=created,
            item_id=item,
            value=value if value is not None else truth,
            model_output={"label": said if said is not None else truth, "confidence": 0.95},
            payload={"features": self.x[item]},
            **fields,
        )

    def honest(self, accounts_n: int = 60, per_account: int = 8) -> list[FeedbackEvent]:
        """Old accounts, each on its own address, labelling random items rightly."""
        out = []
        for a in range(accounts_n):
            for _ in range(per_account):
                item = f"item-{int(self.rng.integers(0, 200))}"
                out.append(
                    self.label(
                        f"honest-{a}", item, float(self.rng.uniform(0, 48)), ip=f"198.51.{a}.7"
                    )
                )
        return out


def drive(pipeline: Pipeline, r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    """The stream in time order, as workers would take it: ingest, analysis and
    release as event time moves; then time moves past every probation."""
    stream = sorted(events, key=lambda e: e.received_at)
    for start in range(0, len(stream), 40):
        pipe = r.pipeline()
        inbox_writer.append(pipe, stream[start : start + 40])
        pipe.execute()
        while pipeline.ingest_batch(NS, "test").entries:
            pass
        pipeline.analyse(NS)
        while pipeline.release(NS):
            pass
    end = stream[-1].received_at.timestamp() + 2 * pipeline.policies.current().policy.probation_s
    pipe = r.pipeline()
    ledger.advance_clock(pipe, NS, end)
    pipe.execute()
    r.delete(keys.consistency_last_run(NS))
    pipeline.analyse(NS)
    while pipeline.release(NS):
        pass


def decisions(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> list[Decision]:
    records = ledger.load(r, NS, [e.event_id for e in events])
    assert all(record is not None for record in records)
    return [record.decision for record in records if record is not None]


def statuses(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> set[str]:
    return {d.status for d in decisions(r, events)}


def test_a_class_on_one_ip_labelling_correctly_is_admitted(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    morning = T0 + timedelta(hours=20)
    items = [f"item-{i}" for i in range(100, 110)]
    pupils = [
        world.label(
            f"pupil-{p}",
            item,
            24 + p / 60 + k / 30,
            created=morning,
            ip="81.2.69.160",
            user_agent="Chrome/131.0.6778.86",
        )
        for p in range(30)
        for k, item in enumerate(items)
    ]
    drive(pipeline, r, world.honest() + pupils)
    found = {x.code for d in decisions(r, pupils) for x in d.reasons}
    assert found & {"sybil.cluster", "coordination.lockstep", "sybil.infrastructure"}
    assert statuses(r, pupils) == {"admitted"}


def test_a_group_labelling_wrongly_is_rejected_together(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    fresh = T0 + timedelta(hours=20)
    targets = [f"item-{i}" for i in range(0, 12, 2)]  # all truly "0"
    swarm = [
        world.label(
            f"sybil-{m}",
            item,
            24 + m / 60 + k / 120,
            value="1",
            created=fresh,
            ip=f"203.0.113.{m % 3}",
        )
        for m in range(25)
        for k, item in enumerate(targets)
    ]
    drive(pipeline, r, world.honest() + swarm)
    assert statuses(r, swarm) == {"rejected"}


def test_a_lone_honest_mistake_is_rejected_without_lowering_the_accounts_reliability(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    slip = world.label("careful", "item-7", 30, value="0")  # item-7 is a "1"
    drive(pipeline, r, [*world.honest(), world.label("careful", "item-8", 29), slip])
    last = decisions(r, [slip])[0]
    assert last.status == "rejected"
    assert MISTAKE in {x.code for x in last.reasons}
    prior = pipeline.policies.current().policy.consistency.reputation
    assert accounts.reliability(r, NS, ["careful"], prior).tolist() == [
        prior.agree / (prior.agree + prior.disagree)
    ]
    assert accounts.seeds(r, NS) == ([], [])


def test_an_unreliable_account_is_rejected_not_reviewed(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    unreliable.save(r, NS, {"flipper": 0.2})
    event = world.label("flipper", "item-3", 1)
    pipe = r.pipeline()
    inbox_writer.append(pipe, [event])
    pipe.execute()
    pipeline.ingest_batch(NS, "test")
    last = decisions(r, [event])[0]
    assert unreliable.CODE in {x.code for x in last.reasons}
    assert last.status == "rejected"


def test_a_correct_label_against_a_confident_model_backed_by_independent_agreement_is_admitted(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    # item-9 truly is a "1", but it looks like a "0": its neighbours and the model
    # say "0"; six independent old accounts correct it within its probation.
    world.x["item-9"] = world.features("0")
    fixes = [
        world.label(f"fixer-{a}", "item-9", 5 + a, said="0", ip=f"192.0.{a}.1") for a in range(6)
    ]
    drive(pipeline, r, world.honest() + fixes)
    found = {x.code for d in decisions(r, fixes) for x in d.reasons}
    assert {"consistency.model", "consistency.knn"} <= found
    assert statuses(r, fixes) == {"admitted"}


def test_a_brigades_consensus_does_not_flag_honest_dissenters(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    world = World(r, make_event)
    fresh = T0 + timedelta(hours=10)
    targets = [f"item-{i}" for i in range(20, 32, 2)]  # all truly "0"
    brigade = [
        world.label(
            f"brig-{m}",
            item,
            12 + m / 60 + k / 120,
            value="1",
            created=fresh,
            ip=f"203.0.113.{m % 3}",
        )
        for m in range(25)
        for k, item in enumerate(targets)
    ]
    dissenters = [
        world.label(f"dissent-{a}", item, 14 + a, ip=f"192.0.2.{a}")
        for a in range(5)
        for item in targets
    ]
    drive(pipeline, r, world.honest() + brigade + dissenters)
    assert statuses(r, brigade) == {"rejected"}
    assert statuses(r, dissenters) == {"admitted"}
    assert not {x.code for d in decisions(r, dissenters) for x in d.reasons} & {
        "consistency.consensus"
    }


def test_a_report_whose_report_reasons_reach_wrong_harm_is_rejected(
    make_event: MakeEvent,
) -> None:
    policy = Policy.default()
    report = make_event(kind="report", value="abuse")
    burst = Reason("reports.correlated", "a burst of correlated reports", 0.8)
    decision = decide(report, [burst], policy, 1, T0)
    assert (decision.status, decision.harm) == ("rejected", 0.8)


def test_a_groups_harm_is_the_sum_of_its_members(make_event: MakeEvent) -> None:
    members = [
        Decision(event_id=f"e{i}", status="rejected", risk=0.9, harm=h, policy_version=1)
        for i, h in enumerate((0.5, 0.25, 0.0))
    ]
    assert group_harm(members) == 0.75


def _swarm_label(make_event: MakeEvent, said: str, confidence: float) -> FeedbackEvent:
    return make_event(value="shipping", model_output={"label": said, "confidence": confidence})


SWARM = [
    Reason("sybil.cluster", "13 accounts found by both lockstep and infrastructure", 1.0),
    Reason("coordination.lockstep", "45 accounts in lockstep on 6 items within 8 s", 0.88),
]


def test_a_suspect_groups_labels_that_nothing_independent_backs_are_decided_by_suspicion(
    make_event: MakeEvent,
) -> None:
    policy = Policy.default()
    weak = Reason("consistency.consensus", "against 3 others on the item", 0.22)
    flip = _swarm_label(make_event, said="billing", confidence=0.37)  # a model unsure
    assert decide(flip, [*SWARM, weak], policy, 1, T0).status == "rejected"
    assert decide(flip, SWARM, policy, 1, T0).status == "rejected"


def test_a_suspect_groups_labels_that_the_model_backs_are_admitted(
    make_event: MakeEvent,
) -> None:
    policy = Policy.default()
    agreeing = _swarm_label(make_event, said="shipping", confidence=0.37)
    assert decide(agreeing, SWARM, policy, 1, T0).status == "pending"
