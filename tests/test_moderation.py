"""Moderators' approve / reject on items in review, from Python and from the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import redis
from click.testing import CliRunner

from feedbackguard import accounts, audit, inbox_writer, keys
from feedbackguard.checks.base import AnalysisContext, Reason, Verdicts
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy import Policy
from feedbackguard.review.moderation import moderate
from feedbackguard.store import Store

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


class Flags:
    """An analyser that sends the given events to review."""

    name = "flags"

    def __init__(self, events: Sequence[FeedbackEvent]) -> None:
        self.ids = [e.event_id for e in events]

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        return {i: [Reason("coordination.lockstep", "test group", 0.6)] for i in self.ids}


def in_review(pipeline: Pipeline, r: redis.Redis[bytes], events: list[FeedbackEvent]) -> None:
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, events)
    pipe.execute()
    while pipeline.ingest_batch(NS, "test").entries:
        pass
    pipeline.analysers = [Flags(events)]
    pipeline.analyse(NS)


def status(r: redis.Redis[bytes], event: FeedbackEvent) -> str:
    record = ledger.load(r, NS, [event.event_id])[0]
    assert record is not None
    return record.decision.status


def test_approved_items_reach_the_store_once_with_the_moderator_in_the_trail(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(3)]
    in_review(pipeline, r, events)
    first = moderate(pipeline, NS, [e.event_id for e in events], approve=True, actor="ana")
    again = moderate(pipeline, NS, [events[0].event_id], approve=True, actor="ana")
    assert sorted(first.approved) == sorted(e.event_id for e in events)
    assert again.not_in_review == [events[0].event_id]
    assert store.count() == 3
    stored = store.get(events[0].event_id)
    assert stored is not None
    assert stored.decisions[-1].decided_by == "moderator:ana"
    assert r.zcard(keys.review(NS)) == 0
    assert ledger.stats(r, NS)["admitted"] == 3


def test_rejected_items_never_reach_the_store(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(2)]
    in_review(pipeline, r, events)
    result = moderate(pipeline, NS, [events[0].event_id], approve=False, actor="ana", note="spam")
    assert result.rejected == [events[0].event_id]
    assert status(r, events[0]) == "rejected"
    assert status(r, events[1]) == "review"
    assert store.count() == 0


def test_only_items_in_review_can_be_moderated(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    pending = make_event()
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, [pending])
    pipe.execute()
    pipeline.ingest_batch(NS, "test")
    result = moderate(pipeline, NS, [pending.event_id, "unknown"], approve=True, actor="ana")
    assert result.not_in_review == [pending.event_id, "unknown"]
    assert status(r, pending) == "pending"
    assert store.count() == 0


def test_decisions_are_audited_and_feed_trust_seeds_and_reputation(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    good, bad = make_event(account_id="helper"), make_event(account_id="troll")
    in_review(pipeline, r, [good, bad])
    moderate(pipeline, NS, [good.event_id], approve=True, actor="ana")
    moderate(pipeline, NS, [bad.event_id], approve=False, actor="bo", note="brigade")
    entries = audit.entries(r, 2)
    assert [(e["actor"], e["action"], e["event_ids"]) for e in entries] == [
        ("bo", "review.reject", [bad.event_id]),
        ("ana", "review.approve", [good.event_id]),
    ]
    assert entries[0]["note"] == "brigade"
    assert accounts.seeds(r, NS) == (["helper"], ["troll"])
    standing = accounts.reliability(
        r, NS, ["helper", "troll"], Policy.default().consistency.reputation
    )
    assert standing[0] > 0.5 > standing[1]


def test_review_cli_lists_and_approves(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    pipeline = fresh_runtime.pipeline
    events = [make_event() for _ in range(2)]
    in_review(pipeline, r, events)
    runner = CliRunner()
    listed = runner.invoke(main, ["review", "list", "--namespace", NS, "--json"])
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {line["event"]["event_id"] for line in lines} == {e.event_id for e in events}
    approved = runner.invoke(main, ["review", "approve", events[0].event_id, "--actor", "cli"])
    assert approved.exit_code == 0, approved.output
    assert status(r, events[0]) == "admitted"
    missing = runner.invoke(main, ["review", "reject", "nope"])
    assert missing.exit_code == 1
