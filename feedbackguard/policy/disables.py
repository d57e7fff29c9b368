"""Which defences a policy change turns off.

A change that disables a defence (an `enabled` or `lockdown` switch going from true
to false, a rate limit removed, a decision threshold raised to 1.0, where nothing
reaches it) needs a note, is flagged in the audit log and listed in the admin API's
answer, so one quiet PATCH cannot switch the defences off unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feedbackguard.policy import Policy

SWITCHES = frozenset({"enabled", "lockdown"})
"""Leaf names whose true -> false turns a defence off."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf value (lists are leaves)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def disables(old: Policy | None, new: Policy) -> list[str]:
    """What `new` turns off that `old` had on, as dotted paths (rate limits as
    `ratelimit.limits[<name>]`), sorted; empty when there was no `old`."""
    if old is None:
        return []
    before = flatten(old.model_dump(mode="json"))
    after = flatten(new.model_dump(mode="json"))
    found = [
        path
        for path, value in before.items()
        if path.rsplit(".", 1)[-1] in SWITCHES and value is True and after.get(path) is False
    ]
    for name in ("review", "reject"):
        was = getattr(old.thresholds, name)
        if was < 1.0 <= getattr(new.thresholds, name):
            found.append(f"thresholds.{name}")
    kept = {limit.name for limit in new.ratelimit.limits}
    found += [
        f"ratelimit.limits[{limit.name}]"
        for limit in old.ratelimit.limits
        if limit.name not in kept
    ]
    return sorted(found)
