"""`feedbackguard worker` says what it does at the default log level."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from click.testing import CliRunner

from feedbackguard import inbox_writer
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.runtime import Runtime


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """The worker points the root logger at the runner's stderr; put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _burst(rt: Runtime, events: list[FeedbackEvent]) -> list[dict[str, Any]]:
    """Queue `events`, run `worker --burst`; its log lines, parsed."""
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, events)
    pipe.execute()
    result = CliRunner().invoke(main, ["worker", "--burst"])
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


def test_worker_logs_one_line_per_batch_with_the_decided_by_status(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: Callable[..., FeedbackEvent]
) -> None:
    fresh_runtime.pipeline.batch_size = 2
    fresh_runtime.pipeline.analysers = []
    lines = _burst(fresh_runtime, [make_event() for _ in range(5)])
    batches = [line["message"] for line in lines if "batch of" in line["message"]]
    assert batches == [
        "default: batch of 2: decided 2 (2 pending)",
        "default: batch of 2: decided 2 (2 pending)",
        "default: batch of 1: decided 1 (1 pending)",
    ]
    assert all(line["level"] == "INFO" for line in lines)


def test_worker_logs_the_progress_of_an_analysis(
    r: redis.Redis[bytes], fresh_runtime: Runtime, make_event: Callable[..., FeedbackEvent]
) -> None:
    lines = _burst(fresh_runtime, [make_event()])
    analysis = [line["message"] for line in lines if ": analysis " in line["message"]]
    steps = [a.name for a in fresh_runtime.pipeline.analysers]
    assert len(analysis) == len(steps) + 1  # a line per analyser, then the summary
    for step, line in zip(steps, analysis, strict=False):
        assert line.startswith(f"default: analysis {step} found ")
    assert analysis[-1].startswith("default: analysis done in ")
