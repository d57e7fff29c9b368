"""Which defences and limits a policy change removes.

A change that removes a defence or a limit needs a note, is flagged in the audit log
and listed in the admin API's answer, the dry run and `policy set`'s output, so one
quiet PATCH cannot switch the defences off unnoticed. It removes one when:

* an `enabled` or `lockdown` switch goes from true to false;
* a decision threshold is raised to 1.0 (nothing reaches it);
* a rate limit is removed (`ratelimit.limits[<name>]`; a changed window is a new
  name), or loses its young-account tier (`...new_account_limit`);
* a known trigger is removed (`consistency.triggers.text[<pattern>]`,
  `consistency.triggers.features[<name>]`);
* the export cap is lifted (`consistency.export_max_share` to null).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feedbackguard.policy import Policy

SWITCHES = frozenset({"enabled", "lockdown"})
"""Leaf names whose true -> false turns a defence off."""
SHOWN_PATTERN_CHARS = 60
"""A removed text trigger is named by its first this many characters."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf value (lists are leaves)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Dotted path -> [old, new] for every leaf that differs (old None when absent)."""
    before = flatten(old or {})
    after = flatten(new)
    return {
        path: [before.get(path), after.get(path)]
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    }


def disables(old: Policy | None, new: Policy) -> list[str]:
    """What `new` removes that `old` had, as dotted paths (list entries as
    `path[<name>]`), sorted; empty when there was no `old`."""
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
    kept = {limit.name: limit for limit in new.ratelimit.limits}
    for limit in old.ratelimit.limits:
        now = kept.get(limit.name)
        if now is None:
            found.append(f"ratelimit.limits[{limit.name}]")
        elif limit.new_account_limit is not None and now.new_account_limit is None:
            found.append(f"ratelimit.limits[{limit.name}].new_account_limit")
    triggers, was_triggers = new.consistency.triggers, old.consistency.triggers
    found += [
        f"consistency.triggers.text[{_short(p)}]"
        for p in was_triggers.text
        if p not in triggers.text
    ]
    names = {rule.name for rule in triggers.features}
    found += [
        f"consistency.triggers.features[{rule.name}]"
        for rule in was_triggers.features
        if rule.name not in names
    ]
    if old.consistency.export_max_share is not None and new.consistency.export_max_share is None:
        found.append("consistency.export_max_share")
    return sorted(found)


def _short(pattern: str) -> str:
    if len(pattern) <= SHOWN_PATTERN_CHARS:
        return pattern
    return pattern[:SHOWN_PATTERN_CHARS] + "..."
