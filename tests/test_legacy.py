"""Upgrading in place: product-wide keys move from their names before the cluster tags."""

from __future__ import annotations

import redis

from feedbackguard import keys, legacy
from feedbackguard.policy.store import PolicyStore


def test_policy_and_auth_keys_move_to_their_tagged_names(r: redis.Redis[bytes]) -> None:
    r.set("fg:policy:seq", 1)
    r.set("fg:policy:current", 1)
    r.set("fg:policy:v:1", b"{}")
    r.sadd("fg:auth:users", "ana")
    r.set("fg:auth:gen:gone", 3, ex=600)
    assert legacy.migrate(r) == 5
    assert not r.keys("fg:policy:*")
    assert not r.keys("fg:auth:*")
    assert r.get(keys.policy_current()) == b"1"
    assert r.smembers(keys.auth_users()) == {b"ana"}
    assert r.get(keys.auth_session_generation("gone")) == b"3"
    assert 0 < r.ttl(keys.auth_session_generation("gone")) <= 600


def test_a_tagged_key_already_there_wins(r: redis.Redis[bytes]) -> None:
    r.set("fg:policy:seq", 1)
    r.set(keys.policy_seq(), 7)
    legacy.migrate(r)
    assert r.get(keys.policy_seq()) == b"7"
    assert not r.exists("fg:policy:seq")


def test_nothing_to_move_moves_nothing(r: redis.Redis[bytes]) -> None:
    r.set(keys.policy_seq(), 7)
    assert legacy.migrate(r) == 0


def test_the_policy_store_finds_a_policy_under_its_old_names(r: redis.Redis[bytes]) -> None:
    set_before = PolicyStore(r, cache_s=0)
    tighter = set_before.current().policy.model_copy(update={"probation_s": 1234.0})
    set_before.set(tighter, "admin")
    for key in r.keys("fg:{@policy}:*"):
        r.rename(key, key.replace(b"fg:{@policy}:", b"fg:policy:"))
    assert PolicyStore(r, cache_s=0).current().policy.probation_s == 1234.0
