"""`feedbackguard bench detect --quick` end to end on one scenario (real replay)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from feedbackguard.bench.detect import _mistaken
from feedbackguard.cli import main
from feedbackguard.simulate import LABEL_KINDS, QUICK, generate
from feedbackguard.simulate.data import load


@pytest.mark.slow
def test_bench_detect_quick_reports_every_defence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(tmp_path / "home"))
    if os.environ.get("FEEDBACKGUARD_TEST_REDIS_URL"):
        monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", redis_url)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    result = CliRunner().invoke(
        main,
        ["bench", "detect", "--json", "--quick", "-s", "swarm",
         "--plots-dir", str(tmp_path / "img")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output.strip().splitlines()[-1])
    swarm = report["scenarios"]["swarm"]
    for defence in ("feedbackguard", "ratelimit", "none", "oracle"):
        for key in ("poison_admitted", "honest_admitted", "honest_review", "clean_acc",
                    "attack_success", "honest_correct_admitted"):  # fmt: skip
            assert key in swarm[defence]
    assert swarm["none"]["poison_admitted"] == 1.0
    assert swarm["none"]["attack_success"] > 0.5
    assert swarm["oracle"]["poison_admitted"] == 0.0
    assert swarm["feedbackguard"]["poison_admitted"] < swarm["none"]["poison_admitted"]
    assert swarm["none"]["honest_correct_admitted"] == 1.0
    assert (tmp_path / "img" / "detect_poison.png").is_file()


def test_honest_mistakes_are_told_apart_from_right_labels() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    data = load("digits")
    honest = [e for e in sim.events if e.kind in LABEL_KINDS]
    wrong = [e for e in honest if _mistaken(e, data)]
    # The population's label noise (4 %), and nothing else.
    assert 0.02 < len(wrong) / len(honest) < 0.06
    assert all(e.value != data.label(int(e.item_id.rsplit("-", 1)[1])) for e in wrong)
