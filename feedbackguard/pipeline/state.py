"""The record state machine: which status changes are allowed, and the one function
that applies them.

An event's status is the last decision of its record (`ledger`). Besides the record,
a status lives in several places that must agree with it: the pending set (scored by
the end of probation) and the releasing set (pending ids a release has claimed), the
review set and the review queue's indexes (`review.queue`), the namespace's counters,
the moderator outcomes per account (`accounts`), the flagged-reason metrics and, for
`admitted`, the retraining store. `apply` is the only writer of all of them, for
ingest, release, re-decision by analysis, moderation and undo alike
(docs/architecture.md, "Record states").

    new event ──► pending | review | rejected                  (ingest)
    pending   ──► admitted                                     (release)
    pending   ──► review | rejected                            (analysis)
    review    ──► rejected                                     (analysis)
    review    ──► admitted | rejected                          (moderator)
    admitted  ──► quarantined                                  (analysis)
    admitted | rejected ──► review                             (moderator undo)

A record may also take a new decision without changing status (analysis found new
reasons for a pending, in-review or admitted event). Everything else is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol

import redis

from feedbackguard import accounts, keys, metrics
from feedbackguard.pipeline import ledger
from feedbackguard.policy.store import PolicyStore
from feedbackguard.review import queue
from feedbackguard.store import Store, admission_from_json

WAITING: Final = frozenset({"pending", "review"})
"""Statuses still waiting for a final one: their records never expire (a release or a
moderator that lags must not find them gone); final outcomes expire after the policy's
`outcome_ttl_s`."""

TRANSITIONS: Final[Mapping[str | None, frozenset[str]]] = {
    None: frozenset({"pending", "review", "rejected"}),
    "pending": frozenset({"pending", "admitted", "review", "rejected"}),
    "review": frozenset({"review", "admitted", "rejected"}),
    "admitted": frozenset({"admitted", "quarantined", "review"}),
    "rejected": frozenset({"review"}),
    "quarantined": frozenset(),
}
"""Old status (None: a new event) -> the statuses it may move to."""

MODERATOR_PREFIX: Final = "moderator:"
_FLAGGED: Final = frozenset({"review", "rejected", "quarantined"})

# Longest a release, re-decision or moderation may hold a namespace's status lock:
# also how long a worker killed while holding it stalls the others. One release
# batch or one chunk of re-decisions takes well under a second.
LOCK_TIMEOUT_S: Final = 15


class Records(Protocol):
    """Where records and what mirrors them live: what moderation needs to change a
    status (the `Pipeline` is one)."""

    r: redis.Redis[bytes]
    store: Store
    policies: PolicyStore


class IllegalTransition(ValueError):
    """A status change the state machine does not allow (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One event taking the last decision of `record` (whose trail ends in the new
    decision and, unless the event is new, has the old one just before it).

    `account_id` and `received_at` are needed where the change touches the review
    queue or a moderator outcome; `due` (end of probation) where it enters pending.
    """

    record: ledger.RawRecord
    account_id: str = ""
    received_at: float = 0.0
    due: float = 0.0

    @property
    def event_id(self) -> str:
        return str(self.record.trail[-1]["event_id"])

    @property
    def new(self) -> str:
        return self.record.status

    @property
    def previous(self) -> Mapping[str, Any] | None:
        """The decision replaced (None for a new event)."""
        return self.record.trail[-2] if len(self.record.trail) > 1 else None

    @property
    def old(self) -> str | None:
        previous = self.previous
        return None if previous is None else str(previous["status"])


@contextmanager
def locked(r: redis.Redis[bytes], namespace: str) -> Iterator[None]:
    """Hold the namespace's status lock: every change after ingest (which only creates
    records) reads records and writes their next status under it."""
    with r.lock(keys.status_lock(namespace), timeout=LOCK_TIMEOUT_S):
        yield


def apply(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    changes: Sequence[Change],
    *,
    ttl_s: float,
    store: Store | None = None,
    actor: str = "auto",
) -> Counter[tuple[str | None, str]]:
    """Apply `changes`: write the store first (admissions, quarantines, restores),
    then queue on `pipe` every Redis write of the changes. The caller executes `pipe`
    (a MULTI: all of them or none). Returns how many events moved from which status
    to which (same-status updates included).

    `actor` is who is recorded in the store's tombstones (`analysis`, or a
    moderator's name); the store is needed when a change admits, quarantines or takes
    back an admission. A change whose new decision was made by a moderator counts as
    that moderator's outcome for the account.
    """
    moves: Counter[tuple[str | None, str]] = Counter()
    admit: list[Change] = []
    quarantine: list[str] = []
    undone: list[str] = []
    readmit: list[str] = []
    for change in changes:
        old, new = change.old, change.new
        if new not in TRANSITIONS.get(old, frozenset()):
            raise IllegalTransition(f"{change.event_id}: {old or 'new'} -> {new}")
        moves[(old, new)] += 1
        if new == "admitted" and old != "admitted":
            admit.append(change)
            if any(d["status"] == "admitted" for d in change.record.trail[:-1]):
                readmit.append(change.event_id)
        elif old == "admitted" and new != "admitted":
            (quarantine if new == "quarantined" else undone).append(change.event_id)
    _write_store(store, admit, readmit, quarantine, undone, actor)

    waiting: list[tuple[str, bytes]] = []
    final: list[tuple[str, bytes]] = []
    pending: dict[str, float] = {}
    review: dict[str, float] = {}
    left_review: list[tuple[str, str, Sequence[str]]] = []
    flagged: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for change in changes:
        event_id, old, new = change.event_id, change.old, change.new
        decision = change.record.trail[-1]
        (waiting if new in WAITING else final).append((event_id, change.record.to_json()))
        if new == "review":
            queue.index(
                pipe,
                namespace,
                event_id,
                account_id=change.account_id,
                received_at=change.received_at,
                risk=float(decision["risk"]),
                codes=_codes(decision),
            )
        if old == new:
            continue
        if old is not None:
            counts[old] -= 1
        counts[new] += 1
        if old == "pending":
            pipe.zrem(keys.pending(namespace), event_id)
            pipe.zrem(keys.releasing(namespace), event_id)
        elif old == "review":
            pipe.zrem(keys.review(namespace), event_id)
            assert change.previous is not None
            left_review.append((event_id, change.account_id, _codes(change.previous)))
        if new == "pending":
            pending[event_id] = change.due
        elif new == "review":
            review[event_id] = change.received_at
        if str(decision["decided_by"]).startswith(MODERATOR_PREFIX):
            _count_outcome(pipe, namespace, change)
        elif new in _FLAGGED and old not in _FLAGGED:
            flagged.update(_codes(decision))

    ledger.write_records(pipe, namespace, waiting, None)
    ledger.write_records(pipe, namespace, final, ttl_s)
    if pending:
        pipe.zadd(keys.pending(namespace), pending)
    if review:
        pipe.zadd(keys.review(namespace), review)
    queue.unindex(pipe, namespace, left_review)
    stats = keys.stats(namespace)
    for status, delta in counts.items():
        if delta:
            pipe.hincrby(stats, status, delta)
    metrics.count_reasons(pipe, namespace, flagged)
    return moves


def _write_store(
    store: Store | None,
    admit: Sequence[Change],
    readmit: Sequence[str],
    quarantine: Sequence[str],
    undone: Sequence[str],
    actor: str,
) -> None:
    """The store's side of the changes: written before Redis, so a crash in between
    leaves the records saying what they said, and the same changes are applied again
    (every store write is idempotent on event_id)."""
    if not (admit or quarantine or undone):
        return
    if store is None:
        raise IllegalTransition("admitting or taking back an admission needs the store")
    if admit:
        store.admit_encoded(
            [admission_from_json(c.record.event_json, c.record.trail) for c in admit]
        )
    if readmit:
        store.restore(readmit, reason="approved again by a moderator", actor=actor)
    if quarantine:
        store.quarantine(quarantine, reason="found by analysis after admission", actor=actor)
    if undone:
        store.quarantine(undone, reason="moderator undid approval", actor=actor)


def _count_outcome(pipe: redis.client.Pipeline[bytes], namespace: str, change: Change) -> None:
    """A moderator's approval or rejection counts for the account; an undo takes back
    the count of the decision it undoes."""
    old, new = change.old, change.new
    if old == "review" and new in ("admitted", "rejected"):
        accounts.record_moderation(pipe, namespace, change.account_id, new == "admitted")
    elif new == "review" and old in ("admitted", "rejected"):
        previous = change.previous
        assert previous is not None
        if str(previous["decided_by"]).startswith(MODERATOR_PREFIX):
            accounts.record_moderation(
                pipe, namespace, change.account_id, old == "admitted", taken_back=True
            )


def _codes(decision: Mapping[str, Any]) -> list[str]:
    return sorted({str(reason["code"]) for reason in decision["reasons"]})
