"""The demo's printed report explains itself (rendering only; tests/test_demo.py runs it)."""

from __future__ import annotations

from typing import Any

import pytest

from feedbackguard.demo import _print

REPORT: dict[str, Any] = {
    "events": 6,
    "seconds": 1.0,
    "outcomes": {"honest": {"admitted": 3}, "swarm": {"rejected": 2, "quarantined": 1}},
    "reasons": {"swarm": {"coordination.lockstep": 3, "sybil.cluster": 3}},
    "review_waiting": 0,
    "store_rows": 3,
    "model": {
        "accuracy_before_attack": 0.97,
        "accuracy_no_defence": 0.81,
        "accuracy_feedbackguard": 0.96,
    },
}


@pytest.fixture
def printed() -> list[str]:
    lines: list[str] = []
    _print(REPORT, lines.append)
    return lines


@pytest.mark.parametrize("column", ["admitted", "review", "rejected", "quarantined"])
def test_demo_report_explains_each_column(printed: list[str], column: str) -> None:
    assert any(line.startswith(f"  {column} ") and len(line.split()) > 4 for line in printed)


def test_demo_report_says_what_quarantined_means(printed: list[str]) -> None:
    line = next(x for x in printed if x.startswith("  quarantined "))
    assert "admitted first" in line
    assert "out of the store" in line


def test_demo_report_says_an_event_can_carry_several_reasons(printed: list[str]) -> None:
    assert any("several reasons, so they add up to more than the events" in x for x in printed)


def test_demo_report_shows_accuracy_before_the_attack_then_without_and_with_a_defence(
    printed: list[str],
) -> None:
    start = printed.index("the desk model's accuracy on the tickets' true labels, retrained on:")
    rows = printed[start + 1 : start + 4]
    assert "before the attack" in rows[0]
    assert rows[0].endswith("97.0%")
    assert "no defence" in rows[1]
    assert rows[1].endswith("81.0%")
    assert "feedbackguard" in rows[2]
    assert rows[2].endswith("96.0%")
