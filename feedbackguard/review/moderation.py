"""Moderators' decisions on items in review: approve (to the retraining store) or reject.

Both go through the state machine (`pipeline.state`) like every automatic decision:
approval admits to the store with the whole decision trail, the last decision by
`moderator:<name>` with the moderator's note. Both outcomes are final, audited with
who, when and why, and counted as the account's moderator outcomes (`accounts`): the
graph's trust seeds and the account's weight in the consensus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from feedbackguard import audit, keys
from feedbackguard.decisions import NOTE_MAX, Decision, json_time
from feedbackguard.pipeline import ledger, state
from feedbackguard.review import queue


@dataclass
class ModerationResult:
    """Which items were decided; the others were not in review (already decided,
    expired or unknown) and are listed so the moderator sees why nothing happened."""

    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    not_in_review: list[str] = field(default_factory=list)
    claimed_by_other: list[str] = field(default_factory=list)
    """Items another moderator holds a live lease on: left to them."""


@dataclass
class UndoResult:
    """Items sent back to review, and those that could not be (not decided by this
    moderator, or decided longer ago than the undo window)."""

    undone: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def waiting(records: state.Records, namespace: str, limit: int, offset: int = 0) -> list[Any]:
    """Items in review, oldest first: (event, last decision) pairs."""
    ids = [
        raw.decode() for raw in records.r.zrange(keys.review(namespace), offset, offset + limit - 1)
    ]
    found = ledger.load(records.r, namespace, ids)
    return [(rec.event, rec.decision) for rec in found if rec is not None]


def moderate(
    records: state.Records,
    namespace: str,
    event_ids: Sequence[str],
    approve: bool,
    actor: str,
    note: str = "",
) -> ModerationResult:
    """Approve or reject items in review. Items not in review are left alone."""
    result = ModerationResult()
    r = records.r
    status = "admitted" if approve else "rejected"
    with state.locked(r, namespace):
        ids = list(dict.fromkeys(event_ids))
        raws = ledger.load_raw(r, namespace, ids)
        decided_at = json_time(datetime.now(UTC))
        changes: list[state.Change] = []
        for event_id, raw, holder in zip(ids, raws, queue.holders(r, namespace, ids), strict=True):
            if raw is None or raw.status != "review":
                result.not_in_review.append(event_id)
                continue
            if holder is not None and holder != actor:
                result.claimed_by_other.append(event_id)
                continue
            event = raw.validated().event
            changes.append(
                decided(
                    raw,
                    status,
                    actor,
                    decided_at,
                    note,
                    event.account_id,
                    event.received_at.timestamp(),
                )
            )
        pipe = applied(records, namespace, changes, actor)
        done = [change.event_id for change in changes]
        if done:  # audited before the MULTI: the audit log has a slot of its own
            audit.record(
                r,
                actor,
                "review.approve" if approve else "review.reject",
                namespace=namespace,
                event_ids=done,
                note=note,
            )
        pipe.execute()
    (result.approved if approve else result.rejected).extend(done)
    return result


def applied(
    records: state.Records, namespace: str, changes: Sequence[state.Change], actor: str
) -> redis.client.Pipeline[bytes]:
    """A MULTI pipeline with moderator `actor`'s `changes` queued on it, for the caller to
    add its own writes to and execute. The store is written first (inside `state.apply`),
    idempotent on event_id: a retry stores nothing twice."""
    pipe = records.r.pipeline(transaction=True)
    ttl = records.policies.current().policy.outcome_ttl_s
    state.apply(pipe, namespace, changes, ttl_s=ttl, store=records.store, actor=actor)
    return pipe


def decided(
    raw: ledger.RawRecord,
    status: str,
    actor: str,
    decided_at: str,
    note: str,
    account_id: str,
    received_at: float,
) -> state.Change:
    """The change of an item in review to `status` by moderator `actor`: the last
    decision's reasons and risk, and the moderator's note (kept in the trail, so it
    reaches the store and its exports)."""
    final = {
        **raw.trail[-1],
        "status": status,
        "decided_at": decided_at,
        "decided_by": state.MODERATOR_PREFIX + actor,
        "note": note[:NOTE_MAX],
    }
    return state.change(raw.then(final), account_id=account_id, received_at=received_at)


def back_to_review(
    raw: ledger.RawRecord | None,
    by: str,
    allowed: Callable[[Decision], bool],
    now: datetime,
    note: str = "",
) -> state.Change | None:
    """The change sending an item back to review with the reasons that put it there,
    decided by `by`, when its current decision passes `allowed` (else None)."""
    record = raw.validated() if raw is not None else None
    if raw is None or record is None or not allowed(record.decision):
        return None
    again = _last_review(record).model_copy(
        update={"status": "review", "decided_at": now, "decided_by": by, "note": note[:NOTE_MAX]}
    )
    return state.change(
        raw.then(again.model_dump(mode="json")),
        account_id=record.event.account_id,
        received_at=record.event.received_at.timestamp(),
    )


def undoable(by: str, now: datetime, window_s: float) -> Callable[[Decision], bool]:
    """Whether a decision is one `by` made (approve or reject) less than `window_s` ago."""

    def check(decision: Decision) -> bool:
        return (
            decision.status in ("admitted", "rejected")
            and decision.decided_by == by
            and (now - decision.decided_at).total_seconds() <= window_s
        )

    return check


def undo(
    records: state.Records,
    namespace: str,
    event_ids: Sequence[str],
    actor: str,
    window_s: float,
    note: str = "",
) -> UndoResult:
    """Send items `actor` approved or rejected less than `window_s` ago back to review.

    An undone approval is quarantined in the store (a new dataset version; the row
    stays, as everywhere in the store) and restored if approved again. The moderator
    outcome the decision counted for the account is taken back."""
    result = UndoResult()
    r = records.r
    by = state.MODERATOR_PREFIX + actor
    with state.locked(r, namespace):
        ids = list(dict.fromkeys(event_ids))
        raws = ledger.load_raw(r, namespace, ids)
        now = datetime.now(UTC)
        allowed = undoable(by, now, window_s)
        changes: list[state.Change] = []
        for event_id, raw in zip(ids, raws, strict=True):
            found = back_to_review(raw, by, allowed, now)
            if found is None:
                result.refused.append(event_id)
            else:
                changes.append(found)
        pipe = applied(records, namespace, changes, actor)
        result.undone = [change.event_id for change in changes]
        if result.undone:  # audited before the MULTI: the audit log has a slot of its own
            audit.record(
                r, actor, "review.undo", namespace=namespace, event_ids=result.undone, note=note
            )
        pipe.execute()
    return result


def _last_review(record: ledger.Record) -> Decision:
    """The decision that put the item in review (its reasons and risk)."""
    for decision in reversed(record.trail):
        if decision.status == "review":
            return decision
    return record.decision
