"""The simulator: deterministic, complete ground truth, valid events, parameters kept."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from feedbackguard.cli import main
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.simulate import (
    FAMILIES,
    QUICK,
    SCENARIOS,
    Simulation,
    generate,
    sweeps,
    truth_path,
)
from feedbackguard.simulate.attacks import (
    AGE_H,
    SPREADS,
    BackdoorParams,
    CompromisedParams,
    MassReportParams,
    SlowDripParams,
    Spread,
    SwarmParams,
)
from feedbackguard.simulate.crowds import ClassroomParams, ViralReportsParams
from feedbackguard.simulate.data import load
from feedbackguard.simulate.honest import CAMPUS_IP, HonestParams
from feedbackguard.simulate.world import HOUR, T0

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


# --- ground truth: correct feedback -------------------------------------------------------


def test_truth_says_which_labels_and_reports_are_correct() -> None:
    sim = generate("mass_report", "digits", 0, honest=TINY)
    data = load("digits")
    bad = {data.item_id(i) for i in sim.bad_items}
    assert bad
    for event in sim.events:
        truth = sim.truth[event.event_id]
        if event.kind == "report":
            assert truth.correct == (event.item_id in bad)
        else:
            index = int(event.item_id.rsplit("-", 1)[1])
            assert truth.correct == (event.value == data.label(index))


def test_honest_reports_are_mostly_of_items_that_deserve_them() -> None:
    sim = generate("honest", "digits", 0, honest=replace(QUICK, report_rate=0.2))
    reports = [sim.truth[e.event_id] for e in sim.events if e.kind == "report"]
    right = sum(bool(t.correct) for t in reports) / len(reports)
    assert 0.7 < right < 0.95  # report_precision 0.8: some honest reports are mistaken


def test_mass_reports_target_only_items_that_do_not_deserve_them() -> None:
    sim = generate("mass_report", "digits", 0, honest=TINY)
    assert sim.attack.targets
    assert not set(sim.attack.targets) & sim.bad_items


def test_an_account_labels_an_item_once_unless_it_ran_out_of_items() -> None:
    sim = generate("honest", "digits", 0, honest=QUICK)
    pairs = [(e.account_id, e.item_id) for e in sim.events if e.kind in LABEL_KINDS]
    assert len(set(pairs)) / len(pairs) > 0.99


# --- sweeps -------------------------------------------------------------------------------


def test_sweep_points_are_deterministic_per_seed() -> None:
    for family in FAMILIES:
        assert sweeps.points(family, 3) == sweeps.points(family, 3)
    randoms = [p.params for p in sweeps.points("swarm", 1) if p.design == "random"]
    others = [p.params for p in sweeps.points("swarm", 2) if p.design == "random"]
    assert randoms != others


def test_sweep_has_default_corners_cases_and_random_points() -> None:
    designs = Counter(p.design for p in sweeps.points("mass_report", 0, random_points=3))
    assert designs == {"default": 1, "corner": 8, "case": 3, "random": 3}
    quick = sweeps.points("mass_report", 0, quick=True)
    assert [p.name for p in quick] == ["default", "corner-low", "corner-high"]


def test_each_point_runs_on_its_own_honest_seed() -> None:
    seeds = [p.seed for p in sweeps.points("brigade", 5)]
    assert seeds == list(range(5, 5 + len(seeds)))


def test_corners_are_an_orthogonal_array_of_the_extremes() -> None:
    for family, factors in sweeps.FACTORS.items():
        rows = sweeps.corners(factors)
        assert len(rows) == 8, family
        assert rows[0] == {f.name: f.extremes[0] for f in factors}
        for f in factors:
            assert Counter(row[f.name] == f.extremes[1] for row in rows) == {True: 4, False: 4}
        for f, g in itertools.combinations(factors, 2):
            pairs = Counter((row[f.name] == f.extremes[1], row[g.name] == g.extremes[1])
                            for row in rows)  # fmt: skip
            assert set(pairs.values()) == {2}, (family, f.name, g.name)


def test_random_points_stay_inside_each_range() -> None:
    for family, factors in sweeps.FACTORS.items():
        for point in sweeps.points(family, 0, random_points=20):
            if point.design != "random":
                continue
            for f in factors:
                value = getattr(point.params, f.name)
                if f.levels:
                    assert value in f.levels
                else:
                    assert f.low <= value <= f.high, (family, f.name, value)


def test_the_issue_cases_are_points_of_their_sweeps() -> None:
    mass = {p.name: p.params for p in sweeps.points("mass_report", 0)}
    one = mass["case: 40 fresh on one /24, 2 posts"]
    assert (one.members, one.targets, one.share, one.ips) == (40, 2, 1.0, "one_24")
    assert one.age_h[1] <= 12
    own = mass["case: 20 fresh on own /24s, 4 posts"]
    assert (own.members, own.targets, own.ips) == (20, 4, "residential")
    brigade = {p.name: p.params for p in sweeps.points("brigade", 0)}
    partial = brigade["case: partial, weeks-old idle"]
    assert partial.share < 1.0
    assert partial.camouflage == 0.0
    assert partial.age_h[0] >= 14 * 24


def _poison_by_member(sim: Simulation) -> dict[str, list[FeedbackEvent]]:
    out: dict[str, list[FeedbackEvent]] = {}
    for event in sim.events:
        if sim.truth[event.event_id].is_poison:
            out.setdefault(event.account_id, []).append(event)
    return out


def _subnet(ip: str | None) -> str:
    assert ip is not None
    return ip.rsplit(".", 1)[0]


def check_claims(sim: Simulation, params: Any) -> None:
    """The stream has the members, targets, shares, /24 spread, account ages, browser
    builds and burst its parameters claim."""
    by_member = _poison_by_member(sim)
    assert len(by_member) == params.members
    start = sim.attack.start
    assert start is not None
    # Ages are counted from the attack's start; a slow drip's from the stream's.
    born = T0 if sim.scenario == "slow_drip" else start
    lo, hi = params.age_h
    for events in by_member.values():
        created = events[0].account_created_at
        assert created is not None
        assert lo * HOUR - 1 <= (born - created).total_seconds() <= hi * HOUR + 1
        if hasattr(params, "duration_s"):
            for event in events:
                assert 0 <= (event.received_at - start).total_seconds() <= params.duration_s
        if hasattr(params, "targets"):
            assert len({e.item_id for e in events}) == max(1, round(params.share * params.targets))
    poison = [e for events in by_member.values() for e in events]
    if hasattr(params, "targets"):
        data = load(sim.dataset)
        assert {e.item_id for e in poison} <= {data.item_id(i) for i in sim.attack.targets}
        assert len(sim.attack.targets) == params.targets
    spread = getattr(params, "ips", None)
    subnets = {_subnet(e.ip) for e in poison}
    if spread == "one_24":
        assert len(subnets) == 1
    elif spread == "few_24":
        assert len(subnets) <= 3
    elif spread == "residential":
        assert len(subnets) == params.members
    if getattr(params, "one_browser", False):
        assert len({e.user_agent for e in poison}) == 1


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"compromised"}))
def test_every_sweep_point_has_the_parameters_it_claims(family: str) -> None:
    for point in sweeps.points(family, 0):
        sim = generate(family, "digits", point.seed, honest=TINY, params=point.params)
        check_claims(sim, point.params)


@pytest.mark.slow
def test_compromised_sweep_points_act_from_where_they_claim() -> None:
    for point in sweeps.points("compromised", 0):
        params = point.params
        sim = generate("compromised", "digits", point.seed, honest=TINY, params=params)
        by_member = _poison_by_member(sim)
        assert len(by_member) == params.members
        history = [
            e for e in sim.events if sim.truth[e.event_id].population == "compromised-history"
        ]
        owner = params.history + round(params.camouflage * params.per_member)
        assert len(history) == params.members * owner
        own = {(e.account_id, e.ip) for e in history}
        for account, events in by_member.items():
            used = {(account, e.ip) for e in events}
            assert (used <= own) == (params.takeover == "own"), point.name
            assert len(events) == params.per_member


@settings(max_examples=25, deadline=None)
@given(
    members=st.integers(5, 40),
    targets=st.integers(1, 10),
    share=st.floats(0.3, 1.0),
    age=st.sampled_from(sorted(AGE_H)),
    ips=st.sampled_from(SPREADS),
    duration_s=st.floats(600.0, 2 * 86400.0),
    one_browser=st.booleans(),
)
def test_mass_report_streams_have_the_parameters_they_claim(
    members: int, targets: int, share: float, age: str, ips: Spread, duration_s: float,
    one_browser: bool,
) -> None:  # fmt: skip
    params = MassReportParams(members=members, targets=targets, share=share, age_h=AGE_H[age],
                              ips=ips, duration_s=duration_s, one_browser=one_browser)  # fmt: skip
    sim = generate("mass_report", "digits", 0, honest=TINY, params=params)
    check_claims(sim, params)
    assert {e.kind for events in _poison_by_member(sim).values() for e in events} == {"report"}


# --- crowd traps --------------------------------------------------------------------------


def _crowd(sim: Simulation, name: str) -> list[FeedbackEvent]:
    events = [e for e in sim.events if sim.truth[e.event_id].crowd == name]
    assert events
    assert all(sim.truth[e.event_id].population == "honest" for e in events)
    assert not any(sim.truth[e.event_id].is_poison for e in events)
    return events


def _mostly_correct(sim: Simulation, events: list[FeedbackEvent]) -> None:
    right = sum(bool(sim.truth[e.event_id].correct) for e in events) / len(events)
    assert 0.88 < right < 1.0  # honest, with the odd mistake recorded as such


def test_classroom_is_one_ip_one_browser_made_that_morning_labelling_together() -> None:
    p = ClassroomParams()
    sim = generate("classroom", "digits", 0, honest=TINY)
    events = _crowd(sim, "classroom")
    _mostly_correct(sim, events)
    groups: dict[str, list[FeedbackEvent]] = {}
    for event in events:
        groups.setdefault(event.account_id.split("-")[0], []).append(event)
    assert len(groups) == p.groups
    for group in groups.values():
        assert len({e.account_id for e in group}) == p.members
        assert len({e.ip for e in group}) == 1
        assert len({e.user_agent for e in group}) == 1
        items = {e.item_id for e in group}
        assert len(items) == p.items
        for account in {e.account_id for e in group}:
            assert {e.item_id for e in group if e.account_id == account} == items
        times = [e.received_at for e in group]
        assert (max(times) - min(times)).total_seconds() <= p.duration_s
        created = [e.account_created_at for e in group if e.account_created_at is not None]
        assert (max(created) - min(created)).total_seconds() <= 3 * HOUR
        assert all((min(times) - c).total_seconds() <= p.created_h[1] * HOUR for c in created)


def test_signup_wave_is_hundreds_of_accounts_made_within_an_hour() -> None:
    sim = generate("signup_wave", "digits", 0, honest=TINY)
    events = _crowd(sim, "signup_wave")
    _mostly_correct(sim, events)
    created = {e.account_id: e.account_created_at for e in events}
    assert len(created) >= 250
    stamps = [c for c in created.values() if c is not None]
    assert (max(stamps) - min(stamps)).total_seconds() <= HOUR
    assert len({_subnet(e.ip) for e in events}) >= 250


def test_campus_nat_is_one_address_with_many_new_accounts() -> None:
    sim = generate("campus_nat", "digits", 0, honest=TINY)
    events = _crowd(sim, "campus_nat")
    _mostly_correct(sim, events)
    assert len({e.ip for e in events}) == 1
    accounts = {e.account_id: e for e in events}
    assert len(accounts) >= 100
    young = [e for e in accounts.values()
             if (e.received_at - e.account_created_at).days < 8]  # type: ignore[operator]  # fmt: skip
    assert len(young) >= 0.25 * len(accounts)


def test_carrier_nat_is_hundreds_of_phones_behind_a_few_addresses_of_one_24() -> None:
    sim = generate("carrier_nat", "digits", 0, honest=TINY)
    events = _crowd(sim, "carrier_nat")
    _mostly_correct(sim, events)
    assert len({e.ip for e in events}) <= 4
    assert len({_subnet(e.ip) for e in events}) == 1
    assert len({e.account_id for e in events}) >= 300
    assert all("Mobile" in (e.user_agent or "") for e in events)


def test_viral_reports_are_many_independent_reporters_of_items_that_deserve_it() -> None:
    p = ViralReportsParams()
    sim = generate("viral_reports", "digits", 0, honest=TINY)
    events = _crowd(sim, "viral_reports")
    assert {e.kind for e in events} == {"report"}
    _mostly_correct(sim, events)
    data = load("digits")
    bad = {data.item_id(i) for i in sim.bad_items}
    right = [e for e in events if sim.truth[e.event_id].correct]
    assert {e.item_id for e in right} <= bad
    assert len({e.account_id for e in events}) == p.reporters
    assert len({_subnet(e.ip) for e in events}) >= 0.8 * p.reporters
    ages = [(e.received_at - e.account_created_at).days for e in events]  # type: ignore[operator]
    assert min(ages) == 0
    assert max(ages) > 30  # old accounts with history among them
    times = sorted(e.received_at for e in right)
    assert (times[int(0.9 * len(times))] - times[0]).total_seconds() <= p.duration_s


def test_power_users_label_hundreds_of_items_over_weeks() -> None:
    honest = HonestParams(accounts=500, events=3000, span_days=2.5, campus_accounts=40,
                          viral_accounts=50)  # fmt: skip
    sim = generate("power_users", "digits", 0, honest=honest)
    assert sim.honest.activity_shape == 1.1
    assert sim.honest.span_days >= 10
    per_account = Counter(e.account_id for e in sim.events)
    top = [n for _, n in per_account.most_common(len(per_account) // 100)]
    assert min(top) >= 100
    heaviest = per_account.most_common(1)[0][0]
    times = [e.received_at for e in sim.events if e.account_id == heaviest]
    assert (max(times) - min(times)).days >= 7
