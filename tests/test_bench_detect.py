"""`feedbackguard bench detect`: the scores of one run, the worst case over a sweep, and
`--quick` end to end (real replay)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from feedbackguard.bench import detect
from feedbackguard.bench.detect import WORST, is_model_fix, power_users, score, summarise
from feedbackguard.bench.report import markdown
from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent, ModelOutput
from feedbackguard.simulate import LABEL_KINDS, QUICK, generate
from feedbackguard.simulate.data import load
from feedbackguard.simulate.honest import HonestParams

TINY = HonestParams(accounts=150, events=600, span_days=1.0, campus_accounts=30,
                    viral_accounts=20)  # fmt: skip


def test_honest_mistakes_are_told_apart_from_right_labels() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    data = load("digits")
    honest = [e for e in sim.events if e.kind in LABEL_KINDS]
    wrong = [e for e in honest if not sim.truth[e.event_id].correct]
    # The population's label noise (4 %), and nothing else.
    assert 0.02 < len(wrong) / len(honest) < 0.06
    assert all(e.value != data.label(int(e.item_id.rsplit("-", 1)[1])) for e in wrong)


def test_without_a_defence_every_mass_reported_item_is_taken_down() -> None:
    sim = generate("mass_report", "digits", 0, honest=TINY)
    everything = {e.event_id: "admitted" for e in sim.events}
    run = score(sim, everything, sim.events, 0.0)
    assert run.poison_admitted == 1.0
    assert run.attack_success == 1.0
    assert run.benign_taken_down == len(sim.attack.targets)
    assert run.review_share == 0.0


def test_review_share_counts_events_left_in_review_over_all_events() -> None:
    sim = generate("swarm", "digits", 0, honest=TINY)
    statuses = {e.event_id: "review" if n % 4 == 0 else "admitted"
                for n, e in enumerate(sim.events)}  # fmt: skip
    run = score(sim, statuses, [], 0.0)
    assert run.review_share == pytest.approx(0.25, abs=0.001)


def test_power_users_are_the_top_percent_of_honest_accounts() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    top = power_users(sim)
    accounts = {e.account_id for e in sim.events}
    assert len(top) == round(0.01 * len(accounts))
    counts = {a: sum(e.account_id == a for e in sim.events) for a in accounts}
    assert min(counts[a] for a in top) >= max(counts[a] for a in accounts - top)


def test_a_model_fix_is_a_label_against_a_confident_model() -> None:
    base = generate("honest", "digits", 0, honest=TINY).events[0]

    def event(label: str, said: str, confidence: float) -> FeedbackEvent:
        out = ModelOutput(label=said, confidence=confidence)
        return base.model_copy(update={"kind": "correction", "value": label, "model_output": out})

    assert is_model_fix(event("3", "8", 0.9))
    assert not is_model_fix(event("3", "8", 0.7))
    assert not is_model_fix(event("3", "3", 0.99))


def test_crowd_figure_is_the_crowds_own_correct_feedback() -> None:
    sim = generate("classroom", "digits", 0, honest=TINY)
    crowd = {e.event_id for e in sim.events if sim.truth[e.event_id].crowd}
    statuses = {e.event_id: "rejected" if e.event_id in crowd else "admitted"
                for e in sim.events}  # fmt: skip
    run = score(sim, statuses, [], 0.0)
    assert run.crowd_correct_admitted == 0.0
    assert run.honest_correct_admitted is not None
    assert 0.3 < run.honest_correct_admitted < 1.0


def _result(fg: dict[str, Any]) -> dict[str, Any]:
    base = {"poison_admitted": 0.0, "attack_success": 0.0, "benign_taken_down": 0,
            "honest_correct_admitted": 1.0, "review_share": 0.0,
            "power_users_correct_admitted": 1.0, "model_fix_admitted": 1.0}  # fmt: skip
    none = dict(base, poison_admitted=1.0, attack_success=1.0)
    queue = {"review_cases": 2.0, "review_actions": 2.0, "first_honest_case_rank": 3,
             "poison_cases_above_honest": True}  # fmt: skip
    return {"events": 1, "feedbackguard": {**base, **queue, **fg}, "ratelimit": none,
            "none": none}  # fmt: skip


def _family(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summary of one mass_report family whose points gave `results` (by name)."""
    jobs = [detect.Job(f"mass_report/{name}", "mass_report", name,
                       "default" if name == "default" else "corner", None, 0, TINY,
                       name == "default") for name in results]  # fmt: skip
    return summarise({f"mass_report/{k}": v for k, v in results.items()}, jobs)


def test_worst_case_is_the_worst_point_of_each_figure() -> None:
    points = (("default", "default", True), ("corner-0", "corner", False),
              ("corner-1", "corner", False))  # fmt: skip
    jobs = [
        detect.Job(f"mass_report/{name}", "mass_report", name, design, None, 0, TINY, full)
        for name, design, full in points
    ]
    jobs.append(detect.Job("crowd/classroom", "classroom", "classroom", "crowd", None, 0, TINY,
                           False))  # fmt: skip
    results = {
        "mass_report/default": _result({"review_share": 0.04}),
        "mass_report/corner-0": _result({"poison_admitted": 0.5, "benign_taken_down": 2}),
        "mass_report/corner-1": _result({"honest_correct_admitted": 0.9, "attack_success": None}),
        "crowd/classroom": _result({"crowd_correct_admitted": 0.2,
                                    "honest_correct_admitted": 0.8}),
    }  # fmt: skip
    report = summarise(results, jobs)
    family = report["families"]["mass_report"]
    assert family["worst"] == {"poison_admitted": 0.5, "attack_success": 0.0,
                               "benign_taken_down": 2, "honest_correct_admitted": 0.9,
                               "review_share": 0.04, "review_cases": 2.0,
                               "review_actions": 2.0, "first_honest_case_rank": 3,
                               "poison_cases_above_honest": True}  # fmt: skip
    assert family["worst_point"]["poison_admitted"] == "mass_report/corner-0"
    assert family["worst_point"]["review_share"] == "mass_report/default"
    assert family["baselines"]["none"]["poison_admitted"] == 1.0
    assert report["crowds"] == {"classroom": 0.2}
    assert report["honest_correct_admitted"] == 0.8
    assert report["worst_at"]["honest_correct_admitted"] == "crowd/classroom"
    assert set(report["scenarios"]) == {"mass_report"}
    table = markdown(report)
    assert (
        "| mass_report | 3 | **feedbackguard** | **50.0 %** | 0.0 % | **2** | **90.0 %** |" in table
    )
    assert "| classroom | **20.0 %** |" in table


def test_review_load_worst_is_the_most_actions_and_the_earliest_honest_case() -> None:
    report = _family({
        "default": _result({"review_cases": 4.0, "review_actions": 12.5}),
        "corner-0": _result({"review_cases": 9.0, "first_honest_case_rank": 1}),
        "corner-1": _result({"poison_cases_above_honest": False}),
    })  # fmt: skip
    family = report["families"]["mass_report"]
    assert {m: family["worst"][m] for m in ("review_cases", "review_actions",
            "first_honest_case_rank", "poison_cases_above_honest")} == {
        "review_cases": 9.0, "review_actions": 12.5, "first_honest_case_rank": 1,
        "poison_cases_above_honest": False}  # fmt: skip
    assert family["worst_point"]["poison_cases_above_honest"] == "mass_report/corner-1"
    assert report["review_actions"] == 12.5


def test_review_load_columns_in_markdown_bold_a_missed_goal() -> None:
    report = _family({"default": _result({"review_actions": 12.5,
                                          "poison_cases_above_honest": False})})  # fmt: skip
    row = next(line for line in markdown(report).splitlines()
               if line.startswith("| mass_report | 1 | **feedbackguard**"))  # fmt: skip
    assert row.endswith("| 2.0 | **12.5** | 3 | **no** |")


def test_review_load_columns_in_markdown_plain_when_goals_are_met() -> None:
    report = _family({"default": _result({"review_actions": 10.0})})
    row = next(line for line in markdown(report).splitlines()
               if line.startswith("| mass_report | 1 | **feedbackguard**"))  # fmt: skip
    assert row.endswith("| 2.0 | 10.0 | 3 | yes |")


@pytest.mark.slow
def test_bench_detect_quick_reports_worst_cases_crowds_and_every_defence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(tmp_path / "home"))
    if os.environ.get("FEEDBACKGUARD_TEST_REDIS_URL"):
        monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", redis_url)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    result = CliRunner().invoke(
        main,
        ["bench", "detect", "--json", "--quick", "--family", "mass_report", "--crowd",
         "viral_reports", "--jobs", "2", "--plots-dir", str(tmp_path / "img")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output.strip().splitlines()[-1])
    family = report["families"]["mass_report"]
    assert [p["point"] for p in family["points"]] == ["default", "corner-low", "corner-high"]
    assert set(family["worst"]) == set(WORST)
    assert set(family["worst_point"]) == set(WORST)
    assert family["baselines"]["none"]["poison_admitted"] == 1.0
    assert family["baselines"]["none"]["attack_success"] == 1.0
    assert family["baselines"]["ratelimit"]["benign_taken_down"] >= 1
    assert set(report["crowds"]) == {"viral_reports"}
    for key in ("power_users_correct_admitted", "model_fix_admitted", "review_share",
                "honest_correct_admitted"):  # fmt: skip
        assert 0.0 <= report[key] <= 1.0
    for key in ("review_cases", "review_actions"):
        assert family["worst"][key] >= 0.0
        assert report["scenarios"]["mass_report"]["feedbackguard"][key] >= 0.0
    assert isinstance(family["worst"]["poison_cases_above_honest"], bool)
    default = report["scenarios"]["mass_report"]
    for defence in ("feedbackguard", "ratelimit", "none", "oracle"):
        for key in ("poison_admitted", "honest_admitted", "honest_review", "clean_acc",
                    "attack_success", "honest_correct_admitted"):  # fmt: skip
            assert key in default[defence]
    assert default["oracle"]["poison_admitted"] == 0.0
    assert default["feedbackguard"]["poison_admitted"] < default["none"]["poison_admitted"]
    assert (tmp_path / "img" / "detect_worst.png").is_file()
    assert (tmp_path / "img" / "detect_crowds.png").is_file()
