"""The store's chain head kept outside the database: in Redis and in the audit log.

A chain whose newest entries were cut off is a shorter chain that still verifies on
its own; only a copy of its head kept elsewhere shows the cut. Every store write
publishes its new head to Redis (`keys.store_head`, moved forward only, one key per
signing key id); every version also goes into the audit log with its head; every
export manifest names the head it was verified at. `verify` checks that each of these
heads is on the chain, and a writer refuses to extend a chain that does not hold the
published head (writing on would hide the cut).

Someone who can write to Redis (the head and the audit log) as well as to the
database can cut the chain and move these copies back with it: SECURITY.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from feedbackguard import audit, keys, scripts
from feedbackguard.store.rows import Head

VERSION_ACTION = "store.version"  # audited with its head by every new version
ADOPTED_ACTION = "store.head"  # an operator made the store's head the published one
_HEAD_ACTIONS = (VERSION_ACTION, ADOPTED_ACTION)


def parse(value: bytes | str) -> Head:
    """`<position>:<signature>` as a `Head`."""
    text = value.decode() if isinstance(value, bytes) else value
    position, _, digest = text.partition(":")
    return Head(int(position), digest)


def _text(head: Head) -> str:
    return f"{head.position}:{head.digest}"


@dataclass(frozen=True)
class OutsideHead:
    """The copies of one store's head in Redis and in the audit log."""

    r: redis.Redis[bytes]
    key_id: str

    def published(self) -> Head | None:
        """The head writers published last, or None when none was."""
        value = self.r.get(keys.store_head(self.key_id))
        return None if value is None else parse(value)

    def publish(self, head: Head) -> None:
        """Move the published head forward to `head` (never back)."""
        scripts.run(
            self.r, "store_head", [keys.store_head(self.key_id)], [head.position, head.digest]
        )

    def audit(self, head: Head, actor: str, action: str = VERSION_ACTION, **detail: Any) -> None:
        """Record `head` in the audit log."""
        audit.record(
            self.r,
            actor,
            action,
            key_id=self.key_id,
            position=head.position,
            digest=head.digest,
            **detail,
        )

    def adopt(self, head: Head, actor: str, note: str) -> Head | None:
        """Make `head` the published head whatever was published before (after the
        operator checked the store: a restored backup, a Redis that lost its data);
        audited with the head it replaced, which it returns."""
        before = self.published()
        self.r.set(keys.store_head(self.key_id), _text(head))
        self.audit(
            head,
            actor,
            ADOPTED_ACTION,
            note=note,
            replaced=None if before is None else _text(before),
        )
        return before

    def audited(self) -> Head | None:
        """The newest head the audit log holds for this store, or None."""
        entry = audit.latest(
            self.r, lambda e: e.get("action") in _HEAD_ACTIONS and e.get("key_id") == self.key_id
        )
        return None if entry is None else Head(int(entry["position"]), str(entry["digest"]))
