"""Moves the product-wide keys from their names before Redis Cluster support.

The policy and auth families gained a hash tag (`fg:{@policy}:...`, `fg:{@auth}:...`,
`keys.LEGACY_FAMILIES`) so that each family's MULTI touches one slot. A deployment
upgraded in place still holds them under the old names; `migrate` moves them, so it
keeps its policy history, users, API keys and session generations (a generation lost
would let an old session cookie of a removed, re-added user live again).
"""

from __future__ import annotations

import redis

from feedbackguard import keys

SCAN_COUNT = 1000
# Present in every deployment that ever read its policy (the bootstrap writes it).
_GUARDS = ("fg:policy:seq", "fg:auth:users", "fg:auth:keys")


def migrate(r: redis.Redis[bytes]) -> int:
    """Move every key of the legacy families to its tagged name; how many moved.

    At most three EXISTS when there is nothing to move. Each key is copied with DUMP /
    RESTORE (works across slots, keeps the expiry) and then deleted; a tagged key
    already present wins. Concurrent callers are safe: a key another caller moved
    first is simply gone, or already restored (BUSYKEY)."""
    if not any(r.exists(guard) for guard in _GUARDS):
        return 0
    moved = 0
    for old_prefix, new_prefix in keys.LEGACY_FAMILIES.items():
        for old in list(r.scan_iter(match=old_prefix + "*", count=SCAN_COUNT)):
            name = old.decode() if isinstance(old, bytes) else str(old)
            dumped = r.dump(name)
            if dumped is None:
                continue
            ttl = max(0, int(r.pttl(name)))
            try:
                r.restore(new_prefix + name[len(old_prefix) :], ttl, dumped)
                moved += 1
            except redis.ResponseError as exc:
                if "BUSYKEY" not in str(exc):
                    raise
            r.delete(name)
    return moved
