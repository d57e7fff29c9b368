"""Versioned policy in Redis, shared by every worker.

Every change is a new version (never an overwrite) with its author, time and note,
and an audit entry. Workers read the current version through a short cache, so a
change reaches all of them within `cache_s` seconds, as measured by the store's
clock (injectable, so tests can move time instead of waiting it out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from pydantic import BaseModel, ConfigDict

from feedbackguard import audit, keys
from feedbackguard.policy import Policy

DEFAULT_CACHE_S = 2.0


class PolicyVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    policy: Policy
    author: str
    created_at: datetime
    note: str = ""


class UnknownPolicyVersion(LookupError):
    pass


class PolicyStore:
    def __init__(
        self,
        r: redis.Redis[bytes],
        cache_s: float = DEFAULT_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.r = r
        self.cache_s = cache_s
        self.clock = clock
        self._cached: PolicyVersion | None = None
        self._cached_at = 0.0

    def current(self) -> PolicyVersion:
        """The policy in force (cached for `cache_s`); the shipped defaults at first use."""
        now = self.clock()
        if self._cached is not None and now - self._cached_at < self.cache_s:
            return self._cached
        raw = self.r.get(keys.policy_current())
        found = self.get(int(raw)) if raw is not None else None
        if found is None:
            found = self._bootstrap()
        self._cached, self._cached_at = found, now
        return found

    def get(self, version: int) -> PolicyVersion | None:
        raw = self.r.get(keys.policy_version(version))
        return PolicyVersion.model_validate_json(raw) if raw else None

    def set(self, policy: Policy, author: str, note: str = "") -> PolicyVersion:
        version = int(self.r.incr(keys.policy_seq()))
        entry = PolicyVersion(
            version=version,
            policy=policy,
            author=author,
            created_at=datetime.now(UTC),
            note=note,
        )
        pipe = self.r.pipeline(transaction=True)
        pipe.set(keys.policy_version(version), entry.model_dump_json())
        pipe.set(keys.policy_current(), version)
        audit.record(pipe, author, "policy.set", version=version, note=note)
        pipe.execute()
        self._cached = None
        return entry

    def rollback(self, version: int, author: str) -> PolicyVersion:
        old = self.get(version)
        if old is None:
            raise UnknownPolicyVersion(f"no policy version {version}")
        return self.set(old.policy, author, note=f"rollback to version {version}")

    def history(self) -> list[PolicyVersion]:
        last = int(self.r.get(keys.policy_seq()) or 0)
        found = [self.get(v) for v in range(last, 0, -1)]
        return [v for v in found if v is not None]

    def _bootstrap(self) -> PolicyVersion:
        """Store the shipped defaults as the first version, once, whoever gets there first."""
        if self.r.set(keys.policy_bootstrap(), 1, nx=True):
            return self.set(Policy.default(), "defaults", note="shipped defaults")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            raw = self.r.get(keys.policy_current())
            if raw is not None:
                found = self.get(int(raw))
                if found is not None:
                    return found
            time.sleep(0.01)
        raise RuntimeError("policy bootstrap by another process did not finish")
