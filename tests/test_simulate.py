"""The simulator: deterministic, complete ground truth, valid events, parameters kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from feedbackguard.cli import main
from feedbackguard.events import FeedbackEvent
from feedbackguard.simulate import QUICK, SCENARIOS, generate, truth_path
from feedbackguard.simulate.attacks import (
    BackdoorParams,
    CompromisedParams,
    MassReportParams,
    SlowDripParams,
    SwarmParams,
)
from feedbackguard.simulate.data import load
from feedbackguard.simulate.honest import CAMPUS_IP, HonestParams

TINY = HonestParams(accounts=150, events=600, span_days=1.0, campus_accounts=30,
                    viral_accounts=20)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_generator_is_deterministic_for_a_seed(scenario: str) -> None:
    a = generate(scenario, "digits", 3, honest=TINY)
    b = generate(scenario, "digits", 3, honest=TINY)
    assert [e.to_json() for e in a.events] == [e.to_json() for e in b.events]


def test_another_seed_gives_another_stream() -> None:
    a = generate("swarm", "digits", 1, honest=TINY)
    b = generate("swarm", "digits", 2, honest=TINY)
    assert [e.event_id for e in a.events] != [e.event_id for e in b.events]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_ground_truth_covers_every_event_and_nothing_else(scenario: str) -> None:
    sim = generate(scenario, "wine", 0, honest=TINY)
    assert set(sim.truth) == {e.event_id for e in sim.events}
    assert len(sim.events) == len({e.event_id for e in sim.events})


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["digits", "breast-cancer", "wine"])
def test_every_event_validates_against_the_contract(dataset: str) -> None:
    sim = generate("backdoor", dataset, 0, honest=TINY)  # type: ignore[arg-type]
    for event in sim.events:
        assert FeedbackEvent.from_json(event.to_json()) == event
        assert event.ip
        assert event.device_id
        assert event.user_agent
        assert event.account_created_at is not None
        assert event.account_created_at <= event.received_at
        assert event.payload is not None
        assert event.payload.features
        assert event.model_output is not None


def test_events_are_in_event_time_order() -> None:
    sim = generate("brigade", "digits", 0, honest=TINY)
    times = [e.received_at for e in sim.events]
    assert times == sorted(times)


def test_honest_population_shares_a_campus_ip_and_has_young_accounts() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    campus = {e.account_id for e in sim.events if e.ip == CAMPUS_IP}
    assert len(campus) >= 0.5 * QUICK.campus_accounts
    young = {e.account_id for e in sim.events
             if (e.received_at - e.account_created_at).days < 7}  # type: ignore[operator]  # fmt: skip
    assert young
    per_account = Counter(e.account_id for e in sim.events)
    assert max(per_account.values()) >= 10 * (len(sim.events) / len(per_account))  # heavy tail


def test_honest_labels_are_mostly_right_but_noisy() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    data = load("digits")
    labelled = [e for e in sim.events if e.kind in ("label", "correction")]
    right = sum(str(e.value) == data.label(int(e.item_id.split("-")[-1])) for e in labelled)
    assert 0.9 < right / len(labelled) < 1.0


def test_swarm_parameters_are_respected() -> None:
    params = SwarmParams(members=12, targets=3)
    sim = generate("swarm", "digits", 0, honest=TINY, params=params)
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    assert len({e.account_id for e in poison}) == 12
    assert len({e.item_id for e in poison}) == 3
    assert len(poison) == 36
    assert {str(e.value) for e in poison} == {sim.attack.target_label}
    assert all(e.received_at >= sim.attack.start for e in poison)  # type: ignore[operator]


def test_backdoor_items_carry_the_trigger_and_the_target_label() -> None:
    params = BackdoorParams(members=4, per_member=5)
    sim = generate("backdoor", "digits", 0, honest=TINY, params=params)
    trigger = sim.attack.trigger
    assert trigger is not None
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    assert len(poison) == 20
    for event in poison:
        assert event.payload is not None
        assert event.payload.features is not None
        assert all(event.payload.features[i] == trigger.value for i in trigger.indices)
        assert str(event.value) == sim.attack.target_label


def test_mass_reports_hit_only_the_targets() -> None:
    params = MassReportParams(members=7, targets=4)
    sim = generate("mass_report", "digits", 0, honest=TINY, params=params)
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    assert len(poison) == 28
    assert {e.kind for e in poison} == {"report"}
    data = load("digits")
    assert {e.item_id for e in poison} == {data.item_id(i) for i in sim.attack.targets}


def test_compromised_accounts_are_old_and_keep_an_honest_history() -> None:
    params = CompromisedParams(members=3, history=4, per_member=10)
    sim = generate("compromised", "digits", 0, honest=TINY, params=params)
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    history = [e for e in sim.events if sim.truth[e.event_id].population == "compromised-history"]
    assert len(poison) == 30
    assert len(history) == 12
    assert {e.account_id for e in poison} == {e.account_id for e in history}
    assert all((e.received_at - e.account_created_at).days > 600 for e in poison)  # type: ignore[operator]


def test_slow_drip_stays_below_every_rate_limit() -> None:
    params = SlowDripParams(members=5, per_day=3.0)
    sim = generate("slow_drip", "digits", 0, honest=TINY, params=params)
    poison = [e for e in sim.events if sim.truth[e.event_id].is_poison]
    per_account = Counter(e.account_id for e in poison)
    assert set(per_account.values()) == {3}  # 3 a day over one day


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown scenario"):
        generate("nope", "digits", 0)


def test_simulate_command_writes_events_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(
        main, ["simulate", "--scenario", "swarm", "--dataset", "wine", "--out", str(out),
               "--seed", "4", "--quick"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    events = [FeedbackEvent.from_json(line) for line in out.read_bytes().splitlines()]
    truth = [orjson.loads(line) for line in truth_path(out).read_bytes().splitlines()]
    assert [t["event_id"] for t in truth] == [e.event_id for e in events]
    assert any(t["is_poison"] for t in truth)
    meta = orjson.loads(out.with_suffix(".meta.json").read_bytes())
    assert meta["scenario"] == "swarm"
    assert meta["seed"] == 4


def test_simulate_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "swarm.jsonl"
    result = CliRunner().invoke(main, ["simulate", "--scenario", "swarm", "--out", str(out)])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not out.parent.exists()


def test_simulate_with_an_invalid_namespace_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["simulate", "--scenario", "swarm", "--quick", "--namespace", "",
         "--out", str(tmp_path / "s.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--namespace" in result.output
    assert not (tmp_path / "s.jsonl").exists()
