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

from feedbackguard import audit, keys, legacy
from feedbackguard.policy import MAX_POLICY_BYTES, Policy, check_size
from feedbackguard.policy.disables import disables

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


class UnnotedDisable(ValueError):
    """A change that turns defences off was given no note."""

    def __init__(self, disabled: list[str]) -> None:
        super().__init__(f"this change disables {', '.join(disabled)}: give a note saying why")
        self.disabled = disabled


class PolicyStore:
    def __init__(
        self,
        r: redis.Redis[bytes],
        cache_s: float = DEFAULT_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_POLICY_BYTES,
    ) -> None:
        self.r = r
        self.max_bytes = max_bytes
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

    def latest(self) -> PolicyVersion | None:
        """The version in force, read now (no cache, no bootstrap)."""
        raw = self.r.get(keys.policy_current())
        return self.get(int(raw)) if raw is not None else None

    def disables(self, policy: Policy) -> list[str]:
        """The defences `policy` would turn off against the version in force."""
        latest = self.latest()
        return disables(latest.policy if latest else None, policy)

    def set(
        self, policy: Policy, author: str, note: str = "", *, note_disables: bool = False
    ) -> PolicyVersion:
        """Put `policy` in force as a new version. Refused (`PolicyTooLarge`) past
        `max_bytes` serialised; with `note_disables` (the admin API, `policy set`) also
        refused (`UnnotedDisable`) when it turns a defence off without a note. The
        defences it turns off are listed in the audit entry as `disables`."""
        check_size(policy, self.max_bytes)
        disabled = self.disables(policy)
        if note_disables and disabled and not note.strip():
            raise UnnotedDisable(disabled)
        version = int(self.r.incr(keys.policy_seq()))
        entry = PolicyVersion(
            version=version,
            policy=policy,
            author=author,
            created_at=datetime.now(UTC),
            note=note,
        )
        extra = {"disables": disabled} if disabled else {}
        # Audited first (the audit log has a slot of its own: audit.record), then the
        # version and the pointer to it at once (one slot: `fg:{@policy}:...`).
        audit.record(self.r, author, "policy.set", version=version, note=note, **extra)
        pipe = self.r.pipeline(transaction=True)
        pipe.set(keys.policy_version(version), entry.model_dump_json())
        pipe.set(keys.policy_current(), version)
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
        """Store the shipped defaults as the first version, once, whoever gets there first.
        A policy still under its pre-cluster names is moved first (`legacy.migrate`, its
        bootstrap mark included), and then found below instead of replaced."""
        legacy.migrate(self.r)
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
