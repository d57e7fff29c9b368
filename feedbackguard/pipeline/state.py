"""The record state machine: which status changes are allowed, and the one function
that applies them.

An event's status is the last decision of its record (`ledger`). Besides the record,
a status lives in several places that must agree with it: the pending set (scored by
the end of probation) and the releasing set (pending ids a release has claimed), the
review set, the review queue's indexes (`review.queue`) and its cases (`review.cases`),
the namespace's counters, the moderator outcomes per account (`accounts`), the
flagged-reason metrics and, for `admitted`, the retraining store. `apply` is the only
writer of all of them, for ingest, release, re-decision by analysis, moderation and
undo alike (docs/architecture.md, "Record states").

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
from typing import Any, Final, NamedTuple, Protocol

import redis

from feedbackguard import accounts, keys, metrics
from feedbackguard.pipeline import ledger
from feedbackguard.policy.store import PolicyStore
from feedbackguard.review import cases, queue
from feedbackguard.store import Admission, EventKey, Store, admission_from_json

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

_NOWHERE: Final[frozenset[str]] = frozenset()
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


class Change(NamedTuple):
    """One event taking a new decision, in the few fields the state machine needs
    (made by `change`). Plain values only: an ingest batch holds thousands of these
    until its MULTI, and tuples of plain values cost the garbage collector nothing."""

    event_id: str
    old: str | None
    new: str
    record: bytes
    """The record's JSON after the change."""
    risk: float
    codes: tuple[str, ...]
    by_moderator: bool
    left_codes: tuple[str, ...]
    """The reason codes of the decision replaced (what the review indexes hold)."""
    undoes_moderator: bool
    """The decision replaced was a moderator's."""
    admitted_before: bool
    admission: Admission | None
    """The store's row, when the change admits."""
    account_id: str
    received_at: float
    due: float
    case: str = ""
    """The review case an event sent back to review rejoins (an undo, a reopen; set by
    the caller with `_replace`), or "": the case of its key (`review.cases`)."""


def change(
    record: ledger.RawRecord, *, account_id: str = "", received_at: float = 0.0, due: float = 0.0
) -> Change:
    """The change to the last decision of `record`, whose trail ends in the new
    decision and, unless the event is new, has the old one just before it.

    `account_id` and `received_at` are needed where the change touches the review
    queue or a moderator outcome; `due` (end of probation) where it enters pending.
    """
    trail = record.trail
    decision = trail[-1]
    previous = trail[-2] if len(trail) > 1 else None
    new = str(decision["status"])
    old = None if previous is None else str(previous["status"])
    admits = new == "admitted" and old != "admitted"
    return Change(
        event_id=str(decision["event_id"]),
        old=old,
        new=new,
        record=record.to_json(),
        risk=float(decision["risk"]),
        codes=_codes(decision),
        by_moderator=str(decision["decided_by"]).startswith(MODERATOR_PREFIX),
        left_codes=() if previous is None else _codes(previous),
        undoes_moderator=previous is not None
        and str(previous["decided_by"]).startswith(MODERATOR_PREFIX),
        admitted_before=any(d["status"] == "admitted" for d in trail[:-1]),
        admission=admission_from_json(record.event_json, trail) if admits else None,
        account_id=account_id,
        received_at=received_at,
        due=due,
    )


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
    # One pass that queues nothing, so a refused change leaves `pipe` untouched; then
    # the store; then every Redis write, aggregated per key where it can be.
    pairs: list[tuple[str | None, str]] = []
    admit: list[Admission] = []
    readmit: list[str] = []
    quarantine: list[str] = []
    undone: list[str] = []
    waiting: list[tuple[str, bytes]] = []
    final: list[tuple[str, bytes]] = []
    pending: dict[str, float] = {}
    review: dict[str, float] = {}
    indexed: list[Change] = []
    left_pending: list[str] = []
    left_review: list[tuple[str, str, Sequence[str]]] = []
    outcomes: list[Change] = []
    flagged: Counter[str] = Counter()
    for c in changes:
        old, new = c.old, c.new
        if new not in TRANSITIONS.get(old, _NOWHERE):
            raise IllegalTransition(f"{c.event_id}: {old or 'new'} -> {new}")
        pairs.append((old, new))
        (waiting if new in WAITING else final).append((c.event_id, c.record))
        if new == "review":
            indexed.append(c)
        if old == new:
            continue
        if new == "pending":
            pending[c.event_id] = c.due
        elif new == "review":
            review[c.event_id] = c.received_at
        elif c.admission is not None:
            admit.append(c.admission)
            if c.admitted_before:
                readmit.append(c.event_id)
        if old == "pending":
            left_pending.append(c.event_id)
        elif old == "review":
            left_review.append((c.event_id, c.account_id, c.left_codes))
        elif old == "admitted":
            (quarantine if new == "quarantined" else undone).append(c.event_id)
        if c.by_moderator:
            outcomes.append(c)
        elif new in _FLAGGED and old not in _FLAGGED:
            flagged.update(c.codes)
    _write_store(store, namespace, admit, readmit, quarantine, undone, actor)

    for c in indexed:
        queue.index(
            pipe,
            namespace,
            c.event_id,
            account_id=c.account_id,
            received_at=c.received_at,
            risk=c.risk,
            codes=c.codes,
        )
    cases.update(
        pipe,
        namespace,
        [cases.join(c.event_id, c.account_id, c.received_at, c.record, c.case) for c in indexed],
        [event_id for event_id, _, _ in left_review],
    )
    for c in outcomes:
        _count_outcome(pipe, namespace, c)
    ledger.write_records(pipe, namespace, waiting, None)
    ledger.write_records(pipe, namespace, final, ttl_s)
    if left_pending:
        pipe.zrem(keys.pending(namespace), *left_pending)
        pipe.zrem(keys.releasing(namespace), *left_pending)
    if left_review:
        pipe.zrem(keys.review(namespace), *(event_id for event_id, _, _ in left_review))
        queue.unindex(pipe, namespace, left_review)
    if pending:
        pipe.zadd(keys.pending(namespace), pending)
    if review:
        pipe.zadd(keys.review(namespace), review)
    moves = Counter(pairs)
    counts: Counter[str] = Counter()
    for (old, new), n in moves.items():
        if old != new:
            counts[new] += n
            if old is not None:
                counts[old] -= n
    stats = keys.stats(namespace)
    for status, delta in counts.items():
        if delta:
            pipe.hincrby(stats, status, delta)
    metrics.count_reasons(pipe, namespace, flagged)
    return moves


def _write_store(
    store: Store | None,
    namespace: str,
    admit: Sequence[Admission],
    readmit: Sequence[str],
    quarantine: Sequence[str],
    undone: Sequence[str],
    actor: str,
) -> None:
    """The store's side of the changes: written before Redis, so a crash in between
    leaves the records saying what they said, and the same changes are applied again
    (every store write is idempotent on the namespace and event_id)."""
    if not (admit or quarantine or undone):
        return
    if store is None:
        raise IllegalTransition("admitting or taking back an admission needs the store")
    if admit:
        store.admit_encoded(admit)
    if readmit:
        store.restore(
            _keys(namespace, readmit), reason="approved again by a moderator", actor=actor
        )
    if quarantine:
        store.quarantine(
            _keys(namespace, quarantine), reason="found by analysis after admission", actor=actor
        )
    if undone:
        store.quarantine(_keys(namespace, undone), reason="moderator undid approval", actor=actor)


def _keys(namespace: str, event_ids: Sequence[str]) -> list[EventKey]:
    return [(namespace, event_id) for event_id in event_ids]


def _count_outcome(pipe: redis.client.Pipeline[bytes], namespace: str, c: Change) -> None:
    """A moderator's approval or rejection counts for the account; an undo takes back
    the count of the moderator's decision it undoes."""
    if c.old == "review" and c.new in ("admitted", "rejected"):
        accounts.record_moderation(pipe, namespace, c.account_id, c.new == "admitted")
    elif c.new == "review" and c.old in ("admitted", "rejected") and c.undoes_moderator:
        accounts.record_moderation(
            pipe, namespace, c.account_id, c.old == "admitted", taken_back=True
        )


def _codes(decision: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted({str(reason["code"]) for reason in decision["reasons"]}))
