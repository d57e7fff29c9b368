"""`feedbackguard policy` from the terminal: show, set (validated), history, rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from feedbackguard import audit, inbox_writer
from feedbackguard.cli import main
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import MAX_POLICY_BYTES
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    return CliRunner()


def test_policy_set_from_show_output_makes_a_new_audited_version(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    shown = runner.invoke(main, ["policy", "show"])
    assert shown.exit_code == 0, shown.output
    current = json.loads(shown.output)
    current["policy"]["probation_s"] = 60
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(current))
    done = runner.invoke(main, ["policy", "set", str(path), "--note", "drill", "--actor", "ana"])
    assert done.exit_code == 0, done.output
    now = PolicyStore(r, cache_s=0).current()
    assert (now.version, now.policy.probation_s, now.author) == (2, 60, "ana")
    assert audit.entries(r, 1)[0]["action"] == "policy.set"


def test_invalid_policy_is_refused_naming_the_field(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("probation_s = -5\n[thresholds]\nreview = 0.9\nreject = 0.5\n")
    done = runner.invoke(main, ["policy", "set", str(path)])
    assert done.exit_code == 1
    assert "probation_s" in done.output
    assert "review threshold must not exceed reject threshold" in done.output
    assert PolicyStore(r, cache_s=0).current().version == 1


def test_a_clock_skew_not_below_the_outcome_ttl_is_refused(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("outcome_ttl_s = 60\nclock_skew_s = 60\n")
    done = runner.invoke(main, ["policy", "set", str(path)])
    assert done.exit_code == 1
    assert "clock_skew_s must be less than outcome_ttl_s" in done.output
    assert PolicyStore(r, cache_s=0).current().version == 1


def test_rollback_restores_an_earlier_version_as_a_new_one(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    store = PolicyStore(r, cache_s=0)
    first = store.current()
    store.set(first.policy.model_copy(update={"probation_s": 1.0}), author="x")
    done = runner.invoke(main, ["policy", "rollback", "1"])
    assert done.exit_code == 0, done.output
    assert store.current().version == 3
    assert store.current().policy == first.policy
    history = runner.invoke(main, ["policy", "history"])
    assert [line.split()[0] for line in history.output.splitlines()] == ["3", "2", "1"]
    assert runner.invoke(main, ["policy", "rollback", "99"]).exit_code == 1


def _shown(runner: CliRunner) -> dict[str, Any]:
    shown = runner.invoke(main, ["policy", "show"])
    assert shown.exit_code == 0, shown.output
    policy: dict[str, Any] = json.loads(shown.output)["policy"]
    return policy


def test_policy_set_refuses_values_of_the_wrong_type(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    policy = _shown(runner)
    policy["probation_s"] = "10"
    policy["graph"]["enabled"] = "off"
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    done = runner.invoke(main, ["policy", "set", str(path), "--note", "x"])
    assert done.exit_code == 1
    assert "probation_s" in done.output
    assert "graph.enabled" in done.output
    assert PolicyStore(r, cache_s=0).current().version == 1


def test_policy_set_refuses_a_file_past_the_size_cap(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"consistency": {"triggers": {"text": ["a" * 900] * 400}}}))
    done = runner.invoke(main, ["policy", "set", str(path), "--note", "x"])
    assert done.exit_code == 1
    assert str(MAX_POLICY_BYTES) in done.output
    assert PolicyStore(r, cache_s=0).current().version == 1


def test_policy_set_that_disables_a_defence_needs_a_note_and_warns(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    policy = _shown(runner)
    policy["consistency"]["outliers"]["enabled"] = False
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    refused = runner.invoke(main, ["policy", "set", str(path)])
    assert refused.exit_code == 1
    assert "consistency.outliers.enabled" in refused.output
    assert PolicyStore(r, cache_s=0).current().version == 1
    done = runner.invoke(main, ["policy", "set", str(path), "--note", "refit too slow"])
    assert done.exit_code == 0, done.output
    assert "disables consistency.outliers.enabled" in done.output
    assert audit.entries(r, 1)[0]["disables"] == ["consistency.outliers.enabled"]


def test_policy_set_with_a_partial_file_is_refused_naming_what_it_would_reset(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    store = PolicyStore(r, cache_s=0)
    store.set(store.current().policy.model_copy(update={"probation_s": 60.0}), author="x")
    path = tmp_path / "policy.toml"
    path.write_text("[thresholds]\nreview = 0.4\nreject = 0.9\n")
    done = runner.invoke(main, ["policy", "set", str(path)])
    assert done.exit_code == 1
    assert "probation_s (60.0 -> default 21600.0)" in done.output
    assert "--merge" in done.output
    assert store.current().version == 2


def test_policy_set_merge_keeps_what_the_file_leaves_out(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    store = PolicyStore(r, cache_s=0)
    store.set(store.current().policy.model_copy(update={"probation_s": 60.0}), author="x")
    path = tmp_path / "policy.toml"
    path.write_text("[thresholds]\nreview = 0.4\n")
    done = runner.invoke(main, ["policy", "set", str(path), "--merge"])
    assert done.exit_code == 0, done.output
    now = store.current().policy
    assert (now.probation_s, now.thresholds.review, now.thresholds.reject) == (60.0, 0.4, 0.9)


def test_policy_set_merge_patches_one_rate_limit_by_scope(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    before = PolicyStore(r, cache_s=0).current().policy.ratelimit.limits
    path = tmp_path / "policy.toml"
    path.write_text('[[ratelimit.limits]]\nscope = "ip"\nlimit = 100\n')
    done = runner.invoke(main, ["policy", "set", str(path), "--merge"])
    assert done.exit_code == 0, done.output
    after = PolicyStore(r, cache_s=0).current().policy.ratelimit.limits
    assert [(x.name, x.limit) for x in after] == [
        (x.name, 100 if x.scope == "ip" else x.limit) for x in before
    ]


def test_policy_set_prints_what_changed(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[thresholds]\nreview = 0.4\n")
    done = runner.invoke(main, ["policy", "set", str(path), "--merge"])
    assert "  thresholds.review: 0.5 -> 0.4" in done.output


def test_policy_set_removing_a_limit_needs_a_note_and_names_it(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[ratelimit.limits]]\nscope = "subnet"\nremove = true\n')
    refused = runner.invoke(main, ["policy", "set", str(path), "--merge"])
    assert refused.exit_code == 1
    assert "ratelimit.limits[subnet:all:3600]" in refused.output
    done = runner.invoke(main, ["policy", "set", str(path), "--merge", "--note", "CGNAT"])
    assert "warning: this version disables ratelimit.limits[subnet:all:3600]" in done.output


def test_policy_set_says_a_new_probation_is_not_retroactive(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("probation_s = 60\n")
    done = runner.invoke(main, ["policy", "set", str(path), "--merge"])
    assert "note: probation_s 21600 -> 60 applies to events ingested from now on" in done.output


def test_policy_dry_run_shows_the_moves_a_rate_limit_would_make(
    runner: CliRunner, r: redis.Redis[bytes], tmp_path: Path, store: Store,
    make_event: Any,
) -> None:  # fmt: skip
    pipeline = Pipeline(r=r, store=store, policies=PolicyStore(r, cache_s=0),
                        checks=default_checks(), analysers=default_analysers())  # fmt: skip
    pipe = r.pipeline()
    inbox_writer.append(pipe, [make_event(account_id="busy", at=i) for i in range(6)])
    pipe.execute()
    while pipeline.ingest_batch("default", "t").entries:
        pass
    path = tmp_path / "policy.toml"
    path.write_text('[[ratelimit.limits]]\nscope = "account"\nnew_account_limit = 2\n')
    done = runner.invoke(main, ["policy", "dry-run", str(path), "--merge", "--hours", "1"])
    assert done.exit_code == 0, done.output
    assert "6 events of default replayed" in done.output
    assert "pending -> rejected: 4  [+rate_limited.account 4]" in done.output
    assert PolicyStore(r, cache_s=0).current().version == 1
