"""Namespace lockdown: audited switch, and the check that sends everything to review."""

from __future__ import annotations

from collections.abc import Callable

import redis

from feedbackguard import audit
from feedbackguard.checks.base import CheckContext
from feedbackguard.consistency.ingest import LOCKDOWN, LockdownCheck
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.decide import decide
from feedbackguard.policy import Policy, lockdown
from tests.conftest import T0

MakeEvent = Callable[..., FeedbackEvent]


def ctx(r: redis.Redis[bytes], policy: Policy | None = None, ns: str = "default") -> CheckContext:
    return CheckContext(redis=r, policy=policy or Policy.default(), namespace=ns)


def test_a_namespace_is_not_locked_until_someone_locks_it(r: redis.Redis[bytes]) -> None:
    assert not lockdown.is_locked(r, "default")
    lockdown.set_lockdown(r, "default", True, "alice", "brigading")
    assert lockdown.is_locked(r, "default")
    assert not lockdown.is_locked(r, "other")
    assert lockdown.status(r, "default") is not None


def test_locking_and_clearing_are_audited_with_who_and_why(r: redis.Redis[bytes]) -> None:
    lockdown.set_lockdown(r, "default", True, "alice", "brigading")
    lockdown.set_lockdown(r, "default", False, "bob", "over")
    newest, older = audit.entries(r, 2)
    assert (older["action"], older["actor"], older["reason"]) == (
        "lockdown.on",
        "alice",
        "brigading",
    )
    assert (newest["action"], newest["actor"]) == ("lockdown.off", "bob")
    assert not lockdown.is_locked(r, "default")


def test_every_event_of_a_locked_namespace_goes_to_review(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    lockdown.set_lockdown(r, "default", True, "alice", "test")
    events = [make_event() for _ in range(3)]
    found = LockdownCheck()(events, ctx(r))
    policy = Policy.default()
    assert sorted(found) == [0, 1, 2]
    assert found[0][0].code == LOCKDOWN
    assert found[0][0].score == policy.thresholds.review
    assert decide(events[0], found[0], policy, 1, T0).status == "review"


def test_lockdown_check_is_silent_when_the_namespace_is_open(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    assert LockdownCheck()([make_event()], ctx(r)) == {}


def test_policy_can_switch_the_lockdown_check_off(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    lockdown.set_lockdown(r, "default", True, "alice", "test")
    off = Policy.default().model_copy(
        update={"consistency": Policy.default().consistency.model_copy(update={"lockdown": False})}
    )
    assert LockdownCheck()([make_event()], ctx(r, off)) == {}
