"""Versioned policy in Redis: defaults at first use, history, rollback, audit."""

from __future__ import annotations

import tomllib

import orjson
import pydantic
import pytest
import redis

from feedbackguard import audit
from feedbackguard.defaults import config_path
from feedbackguard.policy import (
    MAX_POLICY_BYTES,
    MAX_RATE_LIMITS,
    FeatureRule,
    Policy,
    PolicyTooLarge,
    RateLimits,
    Thresholds,
    Triggers,
)
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
