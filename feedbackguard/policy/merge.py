"""Changing part of a policy: patches merged into the policy in force, and the check
that a whole policy does not silently reset what it leaves out.

A patch (the admin API's PATCH, `policy set --merge`) merges object by object. Lists
whose entries have a natural key are patched entry by entry, by that key, so a patch
naming one rate limit leaves the others alone:

    ratelimit.limits               scope and kinds (absent kinds: all kinds), and
                                   window_s when the entry gives it
    consistency.triggers.features  name

An entry matching one in force updates it (the fields it gives), an entry matching
none is added, and `{"remove": true}` with the key fields removes the one it matches.
Other lists (text triggers, a limit's kinds) are replaced whole.

A whole policy (PUT, `policy set` without `--merge`) is a complete policy: what it
leaves out takes its default. Where that default is not the value in force, the
policy is refused (`SilentReset`, naming each setting): one missing section would
otherwise reset it without a word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from feedbackguard.policy import Policy, check_size
from feedbackguard.policy.disables import flatten

REMOVE = "remove"
"""The field of a keyed list entry in a patch that removes the entry it matches."""


class PatchError(ValueError):
    """A patch that cannot be applied (an entry that matches several, or none to remove)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class SilentReset(ValueError):
    """A whole policy leaves out settings whose values in force are not their defaults."""

    def __init__(self, resets: Sequence[tuple[str, Any, Any]]) -> None:
        shown = ", ".join(f"{path} ({old!r} -> default {new!r})" for path, old, new in resets[:8])
        more = f" and {len(resets) - 8} more" if len(resets) > 8 else ""
        super().__init__(
            f"this policy leaves out {len(resets)} setting(s) that would be reset to their "
            f"defaults: {shown}{more}. Merge it into the policy in force instead "
            "(`policy set --merge`, PATCH), or write those settings out"
        )
        self.resets = list(resets)


def _rate_limit_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    kinds = entry.get("kinds")
    # No kinds, null and [] all mean every kind (`RateLimit.name`).
    return (entry.get("scope"), tuple(sorted(kinds)) if isinstance(kinds, list) and kinds else None)


def _name_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (entry.get("name"),)


# Dotted path -> (natural key of an entry, a field that narrows it when given).
KEYED_LISTS: dict[str, tuple[Callable[[Mapping[str, Any]], tuple[Any, ...]], str | None]] = {
    "ratelimit.limits": (_rate_limit_key, "window_s"),
    "consistency.triggers.features": (_name_key, None),
}


def merge(base: Mapping[str, Any], patch: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """`base` (a policy's JSON form) with `patch` merged in, as the module docstring
    says; `PatchError` naming the list when a keyed entry is ambiguous."""
    out = dict(base)
    for key, value in patch.items():
        where = f"{path}.{key}" if path else str(key)
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = merge(old, value, where)
        elif where in KEYED_LISTS and isinstance(value, list) and isinstance(old, list):
            out[key] = _merge_keyed(where, old, value)
        else:
            out[key] = value
    return out


def _merge_keyed(path: str, old: list[Any], patch: list[Any]) -> list[Any]:
    key_of, narrowing = KEYED_LISTS[path]
    if not patch:
        raise PatchError(
            path,
            'an empty list patches no entry; remove entries with {..., "remove": true}, or '
            "replace the whole policy",
        )
    out = list(old)
    for entry in patch:
        if not isinstance(entry, Mapping):
            raise PatchError(path, f"entries are objects, not {entry!r}")
        removing = entry.get(REMOVE, False)
        if removing is not True and REMOVE in entry:
            raise PatchError(path, f'"{REMOVE}" must be true, not {removing!r}')
        fields = {k: v for k, v in entry.items() if k != REMOVE}
        key = key_of(fields)
        matches = [i for i, e in enumerate(out) if isinstance(e, Mapping) and key_of(e) == key]
        if narrowing is not None and narrowing in fields:
            matches = [i for i in matches if out[i].get(narrowing) == fields[narrowing]]
        if len(matches) > 1:
            raise PatchError(
                path, f"{_shown(fields)} matches {len(matches)} entries; give {narrowing} too"
            )
        if removing:
            if not matches:
                raise PatchError(path, f"no entry {_shown(fields)} to remove")
            del out[matches[0]]
        elif matches:
            out[matches[0]] = {**out[matches[0]], **fields}
        else:
            out.append(fields)
    return out


def _shown(fields: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + "}"


def silent_resets(
    current: Policy, given: Mapping[str, Any], proposed: Policy
) -> list[tuple[str, Any, Any]]:
    """The settings `given` (a whole policy's JSON form, as sent) leaves out whose
    value in `proposed` (its default) differs from `current`: (path, current, new)."""
    before = flatten(current.model_dump(mode="json"))
    after = flatten(proposed.model_dump(mode="json"))
    sent = flatten(given)
    return [
        (path, value, after.get(path))
        for path, value in sorted(before.items())
        if not _covered(path, sent) and after.get(path) != value
    ]


def _covered(path: str, sent: Mapping[str, Any]) -> bool:
    """Whether `path` or an enclosing path was given (a section given as a non-object
    value is refused by validation anyway)."""
    parts = path.split(".")
    return any(".".join(parts[:n]) in sent for n in range(1, len(parts) + 1))


def check_whole(current: Policy, given: Mapping[str, Any], proposed: Policy) -> None:
    """Raise `SilentReset` when the whole policy `given` resets settings it leaves out."""
    resets = silent_resets(current, given, proposed)
    if resets:
        raise SilentReset(resets)


def strict(data: Mapping[str, Any]) -> Policy:
    """`data` (a policy's JSON form) validated strictly: JSON types must be the fields'
    own (no "10" for a number, no "off" or 0 for false), so what an admin sends is what
    is enforced. `PolicyTooLarge` past `MAX_POLICY_BYTES`, `pydantic.ValidationError`
    naming each bad field otherwise."""
    check_size(data)
    # The standard library's encoder: orjson refuses integers past 64 bits, which an
    # admin may send (pydantic then names the field as too large). A TOML date is
    # passed on as text, for pydantic to refuse by name.
    return Policy.model_validate_json(json.dumps(data, default=str), strict=True)


def proposed(
    current: Policy, whole: Mapping[str, Any] | None, patch: Mapping[str, Any] | None
) -> Policy:
    """The policy a change proposes against `current`: a whole one (`SilentReset` when
    it resets what it leaves out) or a patch merged into `current` (`PatchError`);
    `pydantic.ValidationError` when it does not validate, `PolicyTooLarge` past the
    size cap."""
    if whole is not None:
        policy = strict(whole)
        check_whole(current, whole, policy)
        return policy
    if patch:
        check_size(patch)
    return strict(merge(current.model_dump(mode="json"), patch or {}))
