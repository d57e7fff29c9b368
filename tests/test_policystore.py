"""Versioned policy in Redis: defaults at first use, history, rollback, audit."""

from __future__ import annotations

import tomllib

import orjson
import pydantic
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import audit
from feedbackguard.defaults import config_path
from feedbackguard.policy import (
    MAX_POLICY_BYTES,
    MAX_RATE_LIMITS,
    FeatureRule,
    Policy,
    PolicyTooLarge,
    RateLimit,
    RateLimits,
    Thresholds,
    Triggers,
)
from feedbackguard.policy.disables import disables
from feedbackguard.policy.merge import PatchError, SilentReset, proposed
from feedbackguard.policy.store import PolicyStore, UnnotedDisable
from tests.conftest import FakeClock


def test_first_read_stores_the_shipped_defaults_as_version_one(r: redis.Redis[bytes]) -> None:
    current = PolicyStore(r).current()
    assert (current.version, current.author) == (1, "defaults")
    assert current.policy == Policy.default()


def test_every_change_is_a_new_version_with_its_author(r: redis.Redis[bytes]) -> None:
    store = PolicyStore(r, cache_s=0)
    store.current()
    stricter = Policy(thresholds=Thresholds(review=0.3, reject=0.8))
    store.set(stricter, author="alice", note="attack under way")
    assert store.current().policy == stricter
    assert [(v.version, v.author) for v in store.history()] == [(2, "alice"), (1, "defaults")]


def test_rollback_restores_an_old_policy_as_a_new_version(r: redis.Redis[bytes]) -> None:
    store = PolicyStore(r, cache_s=0)
    store.current()
    store.set(Policy(thresholds=Thresholds(review=0.1, reject=0.2)), author="alice")
    rolled = store.rollback(1, author="bob")
    assert rolled.version == 3
    assert rolled.policy == Policy.default()


def test_policy_changes_are_in_the_audit_log(r: redis.Redis[bytes]) -> None:
    PolicyStore(r).set(Policy.default(), author="carol", note="why not")
    entry = audit.entries(r, count=1)[0]
    assert (entry["actor"], entry["action"], entry["note"]) == ("carol", "policy.set", "why not")


def test_workers_see_a_change_once_their_cache_expires(
    r: redis.Redis[bytes], clock: FakeClock
) -> None:
    worker_view = PolicyStore(r, cache_s=60, clock=clock)
    before = worker_view.current()
    PolicyStore(r).set(Policy(probation_s=1), author="admin")
    clock.advance(59.9)
    assert worker_view.current() == before
    clock.advance(0.1)
    assert worker_view.current().policy.probation_s == 1


def _big_but_within_list_caps() -> Policy:
    rules = tuple(
        FeatureRule(name=f"rule-{i}", indices=tuple(range(1000, 1400)), low=1.0) for i in range(200)
    )
    policy = Policy.default()
    triggers = Triggers(features=rules)
    return policy.model_copy(
        update={"consistency": policy.consistency.model_copy(update={"triggers": triggers})}
    )


def test_a_policy_past_the_size_cap_is_refused_naming_the_limit(r: redis.Redis[bytes]) -> None:
    store = PolicyStore(r, cache_s=0)
    store.current()
    with pytest.raises(PolicyTooLarge, match=f"limit is {MAX_POLICY_BYTES} bytes"):
        store.set(_big_but_within_list_caps(), author="mallory", note="huge")
    assert store.current().version == 1


def test_rate_limit_lists_are_capped() -> None:
    limits = [
        {"scope": "account", "limit": 10, "window_s": float(i + 1)} for i in range(MAX_RATE_LIMITS)
    ]
    assert len(RateLimits.model_validate({"limits": limits}).limits) == MAX_RATE_LIMITS
    too_many = [*limits, {"scope": "ip", "limit": 1, "window_s": 1.0}]
    with pytest.raises(pydantic.ValidationError, match=f"at most {MAX_RATE_LIMITS}"):
        RateLimits.model_validate({"limits": too_many})


def test_the_shipped_defaults_validate_strictly_too() -> None:
    with config_path("policy.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    assert Policy.model_validate_json(orjson.dumps(raw), strict=True) == Policy.default()


def test_a_change_that_disables_defences_is_flagged_in_the_audit_log(
    r: redis.Redis[bytes],
) -> None:
    store = PolicyStore(r, cache_s=0)
    before = store.current().policy
    assert before.ratelimit.limits
    assert before.graph.enabled
    kept = before.ratelimit.limits[1:]
    off = before.model_copy(
        update={
            "graph": before.graph.model_copy(update={"enabled": False}),
            "ratelimit": before.ratelimit.model_copy(update={"limits": kept}),
        }
    )
    store.set(off, author="ops", note="incident 12: graph analysis overloaded")
    entry = audit.entries(r, count=1)[0]
    assert entry["disables"] == sorted(
        ["graph.enabled", f"ratelimit.limits[{before.ratelimit.limits[0].name}]"]
    )


def test_disabling_without_a_note_is_refused_when_a_note_is_required(
    r: redis.Redis[bytes],
) -> None:
    store = PolicyStore(r, cache_s=0)
    before = store.current().policy
    off = before.model_copy(update={"thresholds": Thresholds(review=1.0, reject=1.0)})
    with pytest.raises(UnnotedDisable, match=r"thresholds\.reject, thresholds\.review"):
        store.set(off, author="ops", note="  ", note_disables=True)
    assert store.current().version == 1


def test_a_change_that_disables_nothing_has_no_disables_entry(r: redis.Redis[bytes]) -> None:
    store = PolicyStore(r, cache_s=0)
    before = store.current().policy
    store.set(before.model_copy(update={"probation_s": 60.0}), author="ops", note_disables=True)
    assert "disables" not in audit.entries(r, count=1)[0]


# -- patches merge by key; whole policies never reset silently ----------------------------


def _limits(policy: Policy) -> dict[str, RateLimit]:
    return {limit.name: limit for limit in policy.ratelimit.limits}


def test_a_rate_limit_patch_without_window_updates_the_limit_of_its_scope_and_kinds() -> None:
    before = Policy.default()
    after = proposed(before, None, {"ratelimit": {"limits": [{"scope": "ip", "limit": 10}]}})
    changed = {name for name, limit in _limits(after).items() if _limits(before)[name] != limit}
    assert changed == {"ip:all:3600"}
    assert _limits(after)["ip:all:3600"].limit == 10


def test_a_rate_limit_patch_for_kinds_leaves_the_all_kinds_limit_alone() -> None:
    patch = {"ratelimit": {"limits": [{"scope": "account", "kinds": ["report"], "limit": 5}]}}
    after = _limits(proposed(Policy.default(), None, patch))
    assert (after["account:report:86400"].limit, after["account:all:3600"].limit) == (5, 120)


def test_a_rate_limit_patch_with_a_new_window_adds_a_limit() -> None:
    burst = {"scope": "ip", "limit": 30, "window_s": 60}
    after = proposed(Policy.default(), None, {"ratelimit": {"limits": [burst]}})
    assert len(after.ratelimit.limits) == len(Policy.default().ratelimit.limits) + 1
    assert _limits(after)["ip:all:60"].limit == 30


def test_an_entry_matching_several_limits_is_refused_asking_for_the_window() -> None:
    base = proposed(
        Policy.default(),
        None,
        {"ratelimit": {"limits": [{"scope": "ip", "limit": 30, "window_s": 60}]}},
    )
    with pytest.raises(PatchError, match="matches 2 entries; give window_s"):
        proposed(base, None, {"ratelimit": {"limits": [{"scope": "ip", "limit": 1}]}})


def test_remove_true_removes_only_the_limit_it_names() -> None:
    patch = {"ratelimit": {"limits": [{"scope": "device", "remove": True}]}}
    after = proposed(Policy.default(), None, patch)
    assert set(_limits(Policy.default())) - set(_limits(after)) == {"device:all:3600"}


def test_removing_a_limit_that_does_not_exist_is_refused() -> None:
    patch = {"ratelimit": {"limits": [{"scope": "kind", "remove": True}]}}
    with pytest.raises(PatchError, match="no entry"):
        proposed(Policy.default(), None, patch)


def test_an_empty_keyed_list_in_a_patch_is_refused() -> None:
    with pytest.raises(PatchError, match="an empty list patches no entry"):
        proposed(Policy.default(), None, {"ratelimit": {"limits": []}})


def test_feature_triggers_are_patched_by_name() -> None:
    rules = [{"name": "a", "indices": [1], "low": 1.0}, {"name": "b", "indices": [2], "low": 2.0}]
    base = proposed(Policy.default(), None, {"consistency": {"triggers": {"features": rules}}})
    patch = {"consistency": {"triggers": {"features": [{"name": "b", "low": 5.0}]}}}
    after = proposed(base, None, patch).consistency.triggers.features
    assert [(rule.name, rule.low) for rule in after] == [("a", 1.0), ("b", 5.0)]


@given(st.data())
def test_a_rate_limit_patch_changes_only_the_limits_it_names(data: st.DataObject) -> None:
    before = Policy.default()
    named = data.draw(st.lists(st.sampled_from(before.ratelimit.limits), unique=True, min_size=1))
    values = data.draw(st.lists(st.integers(1, 10**6), min_size=len(named), max_size=len(named)))
    patch = [
        {"scope": limit.scope, "kinds": limit.kinds and list(limit.kinds), "limit": value}
        for limit, value in zip(named, values, strict=True)
    ]
    after = _limits(proposed(before, None, {"ratelimit": {"limits": patch}}))
    assert set(after) == set(_limits(before))
    for name, limit in _limits(before).items():
        expected = dict(zip((x.name for x in named), values, strict=True)).get(name, limit.limit)
        assert after[name] == limit.model_copy(update={"limit": expected})


def test_a_whole_policy_leaving_out_a_changed_setting_is_refused_naming_it() -> None:
    current = Policy.default().model_copy(update={"probation_s": 60.0})
    given_ = Policy.default().model_dump(mode="json")
    del given_["probation_s"]
    with pytest.raises(SilentReset, match=r"probation_s \(60.0 -> default 21600.0\)"):
        proposed(current, given_, None)


def test_a_whole_policy_leaving_out_only_unchanged_settings_is_accepted() -> None:
    given_ = Policy.default().model_dump(mode="json")
    del given_["graph"]["detect"]  # at its defaults in force
    assert proposed(Policy.default(), given_, None) == Policy.default()


# -- what a change removes ----------------------------------------------------------------


def test_dropping_the_young_account_tier_of_a_limit_is_a_removal() -> None:
    patch = {"ratelimit": {"limits": [{"scope": "account", "new_account_limit": None}]}}
    after = proposed(Policy.default(), None, patch)
    assert disables(Policy.default(), after) == [
        "ratelimit.limits[account:all:3600].new_account_limit"
    ]


def test_removing_a_known_trigger_is_a_removal() -> None:
    before = proposed(Policy.default(), None, {"consistency": {"triggers": {"text": ["cf-1"]}}})
    after = proposed(before, None, {"consistency": {"triggers": {"text": []}}})
    assert disables(before, after) == ["consistency.triggers.text[cf-1]"]


def test_lifting_the_export_cap_is_a_removal() -> None:
    after = proposed(Policy.default(), None, {"consistency": {"export_max_share": None}})
    assert disables(Policy.default(), after) == ["consistency.export_max_share"]


def test_audit_entries_held_back_are_collected_not_written(r: redis.Redis[bytes]) -> None:
    with audit.held_back() as held:
        audit.record(r, "drift", "lockdown.on", namespace="x")
    assert [entry["action"] for entry in held] == ["lockdown.on"]
    assert audit.entries(r) == []
