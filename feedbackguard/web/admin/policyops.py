"""Policy operations behind the admin API: deep-merge patches, diffs between versions,
and the dry run that shows how a proposed policy would change recent decisions."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from feedbackguard.checks.base import Reason
from feedbackguard.checks.graph import load_window
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.decide import decide
from feedbackguard.policy import Policy, check_size
from feedbackguard.policy.disables import disables, flatten
from feedbackguard.policy.store import PolicyStore

LOAD_CHUNK = 1000
"""Records fetched per MGET in a dry run."""

DRY_RUN_METHOD = (
    "each event's recorded reasons re-decided under the proposed thresholds "
    "(reason scores are as the checks found them; checks are not re-run, they write state)"
)


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in: nested objects merge key by key, anything else
    (numbers, strings, lists, null) replaces the old value."""
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Dotted path -> [old, new] for every leaf that differs (old None when absent)."""
    before = flatten(old or {})
    after = flatten(new)
    return {
        path: [before.get(path), after.get(path)]
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    }


def as_json(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json")


def strict(data: Mapping[str, Any]) -> Policy:
    """`data` (a policy's JSON form) validated strictly: JSON types must be the fields'
    own (no "10" for a number, no "off" or 0 for false), so what an admin sends is what
    is enforced. `PolicyTooLarge` past `MAX_POLICY_BYTES`, `pydantic.ValidationError`
    naming each bad field otherwise."""
    check_size(data)
    # The standard library's encoder: orjson refuses integers past 64 bits, which an
    # admin may send (pydantic then names the field as too large).
    return Policy.model_validate_json(json.dumps(data), strict=True)


def proposed(
    store: PolicyStore, whole: Mapping[str, Any] | None, patch: Mapping[str, Any] | None
) -> Policy:
    """The policy a request proposes: a whole one, or a patch to the current one
    (`pydantic.ValidationError` when it does not validate, `PolicyTooLarge` past the
    size cap)."""
    if whole is not None:
        return strict(whole)
    if patch:
        check_size(patch)
    base = as_json(store.current().policy)
    return strict(deep_merge(base, patch or {}))


def disabled_by(store: PolicyStore, policy: Policy) -> list[str]:
    """The defences `policy` turns off against the version in force (dotted paths)."""
    return disables(store.current().policy, policy)


@dataclass(frozen=True)
class DryRun:
    examined: int
    skipped_moderated: int
    transitions: dict[tuple[str, str], int]
    truncated: bool

    @property
    def changed(self) -> int:
        return sum(n for (old, new), n in self.transitions.items() if not same(old, new))


def same(old: str, new: str) -> bool:
    """A re-decided `pending` is what an `admitted` item was before its probation."""
    return old == new or (old == "admitted" and new == "pending")


def dry_run(
    r: redis.Redis[bytes],
    namespace: str,
    policy: Policy,
    hours: float,
    max_events: int,
) -> DryRun:
    """How the last `hours` (event time) of the namespace would be decided under
    `policy`: count by (current status, status under `policy`).

    The events come from the graph window (event ids by event time); their records
    (the recorded reasons) from the ledger. Records already expired are not counted."""
    now = ledger.clock(r, namespace)
    rows = load_window(r, namespace, now - hours * 3600.0, policy.graph)
    truncated = len(rows) > max_events
    ids = [row.event_id for row in rows.newest_first(max_events)]
    transitions: Counter[tuple[str, str]] = Counter()
    examined = skipped = 0
    for offset in range(0, len(ids), LOAD_CHUNK):
        for record in ledger.load(r, namespace, ids[offset : offset + LOAD_CHUNK]):
            if record is None:
                continue
            examined += 1
            last = record.decision
            if last.decided_by != "auto":
                skipped += 1
                continue
            reasons = [Reason(x.code, x.detail, x.score) for x in last.reasons]
            new = decide(record.event, reasons, policy, 0, last.decided_at)
            transitions[(last.status, new.status)] += 1
    return DryRun(examined, skipped, dict(transitions), truncated)
