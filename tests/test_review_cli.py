"""`feedbackguard review list` filters and `review reject` from the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from click.testing import CliRunner

from feedbackguard.checks.base import Reason
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.runtime import Runtime
from tests.review_helpers import NS, send_to_review

MakeEvent = Callable[..., FeedbackEvent]


def test_review_list_filters_by_reason_and_account_and_reject_works(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    dense = make_event(account_id="d1")
    lock = make_event(account_id="l1")
    send_to_review(
        fresh_runtime.pipeline,
        r,
        [dense, lock],
        per_event={dense.event_id: [Reason("sybil.dense", "", 0.6)]},
    )
    runner = CliRunner()
    by_reason = runner.invoke(
        main, ["review", "list", "--namespace", NS, "--reason", "sybil.dense", "--json"]
    )
    assert by_reason.exit_code == 0, by_reason.output
    assert [json.loads(x)["event"]["event_id"] for x in by_reason.stdout.splitlines()] == [
        dense.event_id
    ]
    by_account = runner.invoke(
        main, ["review", "list", "--namespace", NS, "--account", "l1", "--json"]
    )
    assert [json.loads(x)["event"]["event_id"] for x in by_account.stdout.splitlines()] == [
        lock.event_id
    ]
    rejected = runner.invoke(
        main, ["review", "reject", lock.event_id, "--note", "brigade", "--actor", "cli"]
    )
    assert rejected.exit_code == 0, rejected.output
    record = ledger.load(r, NS, [lock.event_id])[0]
    assert record is not None
    assert record.decision.status == "rejected"


def test_review_cases_lists_cases_and_one_command_decides_and_undoes_a_case(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    swarm = [make_event(account_id=f"s{i}") for i in range(5)]
    send_to_review(
        fresh_runtime.pipeline,
        r,
        swarm,
        per_event={e.event_id: [Reason("coordination.lockstep", "", 0.6, "g:1")] for e in swarm},
    )
    runner = CliRunner()
    listed = runner.invoke(main, ["review", "cases", "--json"])
    assert listed.exit_code == 0, listed.output
    (case,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (case["kind"], case["events"], case["accounts"]) == ("group", 5, 5)
    decided = runner.invoke(
        main, ["review", "decide-case", case["case_id"], "reject", "--actor", "cli"]
    )
    assert decided.exit_code == 0, decided.output
    assert "rejected 5" in decided.output
    statuses = {
        rec.decision.status for rec in ledger.load(r, NS, [e.event_id for e in swarm]) if rec
    }
    assert statuses == {"rejected"}
    action = decided.output.split("(action ")[1].split(";")[0]
    undone = runner.invoke(main, ["review", "undo-case", action, "--actor", "cli"])
    assert undone.exit_code == 0, undone.output
    statuses = {
        rec.decision.status for rec in ledger.load(r, NS, [e.event_id for e in swarm]) if rec
    }
    assert statuses == {"review"}
