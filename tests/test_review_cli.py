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
