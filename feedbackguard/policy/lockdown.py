"""Namespace lockdown: while on, every new feedback event of the namespace goes to
review (a moderator decides each one) instead of probation.

Switched on by an admin, or by the drift monitor when policy says so
(`consistency.drift.lockdown`); only an admin clears it. Every change is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import redis

from feedbackguard import audit, keys


def is_locked(r: redis.Redis[bytes], namespace: str) -> bool:
    return bool(r.exists(keys.lockdown(namespace)))


def status(r: redis.Redis[bytes], namespace: str) -> dict[str, str] | None:
    """Who locked the namespace down, why and when; None when it is not."""
    raw = r.get(keys.lockdown(namespace))
    return None if raw is None else dict(orjson.loads(raw))


def set_lockdown(r: redis.Redis[bytes], namespace: str, on: bool, actor: str, reason: str) -> None:
    """Lock the namespace down (on) or clear it; audited either way."""
    # Audited first: the audit log has a slot of its own (audit.record).
    audit.record(
        r, actor, "lockdown.on" if on else "lockdown.off", namespace=namespace, reason=reason
    )
    if on:
        detail = {"actor": actor, "reason": reason, "at": datetime.now(UTC).isoformat()}
        r.set(keys.lockdown(namespace), orjson.dumps(detail))
    else:
        r.delete(keys.lockdown(namespace))
