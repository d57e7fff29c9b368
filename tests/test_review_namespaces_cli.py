"""`feedbackguard review list` without --namespace: every namespace's counts."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from click.testing import CliRunner

from feedbackguard import inbox_writer
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.runtime import Runtime
from tests.review_helpers import send_to_review

MakeEvent = Callable[..., FeedbackEvent]


def _two_namespaces(rt: Runtime, make_event: MakeEvent) -> None:
    """`default` with two events in review, `shop` with one pending."""
    rt.pipeline.checks = []
    send_to_review(rt.pipeline, rt.redis, [make_event(), make_event()])
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, [make_event(namespace="shop")])
    pipe.execute()
    rt.pipeline.ingest_batch("shop", "test")


def test_review_list_without_a_namespace_counts_every_namespace(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    _two_namespaces(fresh_runtime, make_event)
    result = CliRunner().invoke(main, ["review", "list", "--json"])
    assert result.exit_code == 0, result.output
    found = {
        line["namespace"]: line["statuses"] for line in map(json.loads, result.stdout.splitlines())
    }
    assert found["default"]["review"] == 2
    assert found["shop"] == {
        "pending": 1,
        "admitted": 0,
        "review": 0,
        "rejected": 0,
        "quarantined": 0,
    }


def test_review_list_without_a_namespace_prints_a_table_of_namespaces(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: MakeEvent
) -> None:
    _two_namespaces(fresh_runtime, make_event)
    lines = CliRunner().invoke(main, ["review", "list"]).stdout.splitlines()
    assert lines[0].split() == [
        "namespace",
        "pending",
        "admitted",
        "review",
        "rejected",
        "quarantined",
    ]
    assert lines[1].split() == ["default", "0", "0", "2", "0", "0"]
    assert lines[2].split() == ["shop", "1", "0", "0", "0", "0"]


def test_review_list_filters_need_a_namespace(
    r: redis.Redis[bytes], fresh_runtime: Runtime
) -> None:
    result = CliRunner().invoke(main, ["review", "list", "--reason", "sybil.trust"])
    assert result.exit_code == 2
    assert "need --namespace" in result.output
