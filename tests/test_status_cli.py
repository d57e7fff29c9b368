"""`feedbackguard status`: statuses, reasons, inbox lag, probation and review per namespace."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from feedbackguard import inbox_writer, keys
from feedbackguard.cli import main
from feedbackguard.cli.home import HOME_EXIT_CODE
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy import Policy
from tests.conftest import T0
from tests.review_helpers import send_to_review

MakeEvent = Callable[..., FeedbackEvent]


def _queue(rt: Runtime, events: Sequence[FeedbackEvent]) -> None:
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, list(events))
    pipe.execute()


def _ingest(rt: Runtime, events: Sequence[FeedbackEvent], namespace: str = "default") -> None:
    _queue(rt, events)
    while rt.pipeline.ingest_batch(namespace, "test").entries:
        pass


def _status(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["status", "--json", *args])
    assert result.exit_code == 0, result.output
    by_name: dict[str, Any] = {s["namespace"]: s for s in json.loads(result.output)["namespaces"]}
    return by_name


@pytest.fixture
def rt(r: redis.Redis[bytes], fresh_runtime: Runtime) -> Runtime:
    """The CLI's runtime on an empty Redis, deciding with rate limits only."""
    fresh_runtime.pipeline.checks = fresh_runtime.pipeline.checks[1:2]  # rate limits
    fresh_runtime.pipeline.analysers = []
    return fresh_runtime


def test_status_counts_events_by_status_per_namespace(rt: Runtime, make_event: MakeEvent) -> None:
    _ingest(rt, [make_event(), make_event()])
    _ingest(rt, [make_event(namespace="shop")], namespace="shop")
    found = _status()
    assert found["default"]["statuses"]["pending"] == 2
    assert found["shop"]["statuses"]["pending"] == 1


def test_status_lists_the_most_frequent_reasons_first(rt: Runtime, make_event: MakeEvent) -> None:
    events = [make_event() for _ in range(3)]
    send_to_review(rt.pipeline, rt.redis, events[:1], code="sybil.trust")
    send_to_review(rt.pipeline, rt.redis, events[1:], code="coordination.lockstep")
    reasons = _status()["default"]["top_reasons"]
    assert reasons[:2] == [
        {"code": "coordination.lockstep", "events": 2},
        {"code": "sybil.trust", "events": 1},
    ]


def test_status_shows_what_waits_in_the_inbox_and_how_old_it_is(
    rt: Runtime, make_event: MakeEvent
) -> None:
    _ingest(rt, [make_event()])  # the namespace exists
    _queue(rt, [make_event(), make_event()])
    inbox = _status()["default"]["inbox"]
    assert inbox["waiting"] == 2
    assert inbox["lag_s"] >= 0


def test_status_says_when_probation_releases_pending_events(
    rt: Runtime, make_event: MakeEvent
) -> None:
    probation_s = Policy.default().probation_s
    _ingest(rt, [make_event(at=0), make_event(at=60)])
    probation = _status()["default"]["probation"]
    assert probation["waiting"] == 2
    assert probation["due_now"] == 0
    assert probation["next_release_at"] == (T0 + timedelta(seconds=probation_s)).isoformat()
    assert probation["next_release_in_s"] == probation_s - 60  # the clock is at T0 + 60
    assert probation["last_release_in_s"] == probation_s


def test_status_shows_the_review_backlog_and_its_oldest_item(
    rt: Runtime, make_event: MakeEvent
) -> None:
    send_to_review(rt.pipeline, rt.redis, [make_event(at=0), make_event(at=30)])
    review = _status()["default"]["review"]
    assert review["waiting"] == 2
    assert review["oldest_received_at"] == T0.isoformat()


def test_status_prints_one_block_per_namespace(rt: Runtime, make_event: MakeEvent) -> None:
    _ingest(rt, [make_event()])
    _ingest(rt, [make_event(namespace="shop")], namespace="shop")
    output = CliRunner().invoke(main, ["status"]).output
    assert output.startswith("default  (event clock ")
    assert "\nshop  (event clock " in output
    assert "  probation  1 pending: 0 due now, next release in 6.0 h" in output


def test_status_refuses_a_home_that_was_never_initialised(tmp_path: Path) -> None:
    result = CliRunner(env={"FEEDBACKGUARD_HOME": str(tmp_path / "nowhere")}).invoke(
        main, ["status"]
    )
    assert result.exit_code == HOME_EXIT_CODE
    assert not (tmp_path / "nowhere").exists()


def test_status_of_a_home_without_feedback_says_so(rt: Runtime) -> None:
    assert not rt.redis.exists(keys.namespaces())
    assert CliRunner().invoke(main, ["status"]).output == "no namespace has received feedback yet\n"
