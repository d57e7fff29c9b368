"""Versioned policy in Redis: defaults at first use, history, rollback, audit."""

from __future__ import annotations

import redis

from feedbackguard import audit
from feedbackguard.policy import Policy, Thresholds
from feedbackguard.policy.store import PolicyStore
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
