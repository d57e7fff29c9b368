"""Per-account scores an analysis run found, cached in a Redis hash for the checks
that apply them at ingest (outliers, unreliable accounts): each run replaces the
whole set, so accounts no longer found drop out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis


def replace(r: redis.Redis[bytes], key: str, found: Mapping[str, float]) -> None:
    """Make `found` (account -> score) the hash's whole content, atomically."""
    pipe = r.pipeline(transaction=True)
    pipe.delete(key)
    if found:
        pipe.hset(key, mapping={k: repr(v) for k, v in found.items()})
    pipe.execute()


def lookup(r: redis.Redis[bytes], key: str, accounts: Sequence[str]) -> dict[str, float]:
    """The scores of those of `accounts` that are in the hash."""
    if not accounts:
        return {}
    raw = r.hmget(key, list(accounts))
    return {a: float(v) for a, v in zip(accounts, raw, strict=True) if v is not None}
