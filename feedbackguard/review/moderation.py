"""Moderators' decisions on items in review: approve (to the retraining store) or reject.

Approval goes through the same path as automatic admission (`Store.admit` with the
whole decision trail, the last decision by `moderator:<name>`); both outcomes are
final, audited with who, when and why, and feed the graph's trust seeds (approved
accounts become trusted seeds, rejected ones negative seeds) and the accounts'
reputation (their weight in the consensus).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis

from feedbackguard import accounts, audit, reputation
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.decide import Decision
from feedbackguard.pipeline.engine import STATUS_LOCK_TIMEOUT_S, Pipeline
from feedbackguard.review import queue

MODERATOR_PREFIX = "moderator:"


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


def _dump(trail: Sequence[Decision]) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json") for d in trail]


def waiting(pipeline: Pipeline, namespace: str, limit: int, offset: int = 0) -> list[Any]:
    """Items in review, oldest first: (event, last decision) pairs."""
    ids = [
        raw.decode()
        for raw in pipeline.r.zrange(ledger.review_key(namespace), offset, offset + limit - 1)
    ]
    records = ledger.load(pipeline.r, namespace, ids)
    return [(rec.event, rec.decision) for rec in records if rec is not None]


def moderate(
    pipeline: Pipeline,
    namespace: str,
    event_ids: Sequence[str],
    approve: bool,
    actor: str,
    note: str = "",
) -> ModerationResult:
    """Approve or reject items in review. Items not in review are left alone."""
    result = ModerationResult()
    r = pipeline.r
    status = "admitted" if approve else "rejected"
    with r.lock(ledger.lock_key(namespace), timeout=STATUS_LOCK_TIMEOUT_S):
        ids = list(dict.fromkeys(event_ids))
        records = ledger.load(r, namespace, ids)
        now = datetime.now(UTC)
        decided: list[tuple[FeedbackEvent, list[Decision]]] = []
        held = queue.holders(r, namespace, ids)
        done_records: list[ledger.Record] = []
        reapproved: list[str] = []
        for event_id, record, holder in zip(ids, records, held, strict=True):
            if record is None or record.decision.status != "review":
                result.not_in_review.append(event_id)
                continue
            if holder is not None and holder != actor:
                result.claimed_by_other.append(event_id)
                continue
            done_records.append(record)
            if any(d.status == "admitted" for d in record.trail):
                reapproved.append(event_id)  # approved before, undone: quarantined now
            final = record.decision.model_copy(
                update={"status": status, "decided_at": now, "decided_by": MODERATOR_PREFIX + actor}
            )
            decided.append((record.event, [*record.trail, final]))
        if approve and decided:
            pipeline.store.admit(decided)  # idempotent on event_id: a retry stores nothing twice
            if reapproved:
                pipeline.store.restore(
                    reapproved, reason="approved again by a moderator", actor=actor
                )
        ttl = pipeline.policies.current().policy.outcome_ttl_s
        pipe = r.pipeline(transaction=True)
        ledger.write_records(
            pipe,
            namespace,
            [
                (
                    event.event_id,
                    ledger.encode_record(
                        event.to_json(), [d.model_dump(mode="json") for d in trail]
                    ),
                )
                for event, trail in decided
            ],
            ttl,
        )
        if decided:
            done = [event.event_id for event, _ in decided]
            pipe.zrem(ledger.review_key(namespace), *done)
            queue.unindex_records(pipe, namespace, done_records)
            pipe.hincrby(ledger.stats_key(namespace), "review", -len(done))
            pipe.hincrby(ledger.stats_key(namespace), status, len(done))
            audit.record(
                pipe,
                actor,
                "review.approve" if approve else "review.reject",
                namespace=namespace,
                event_ids=done,
                note=note,
            )
        pipe.execute()
    # One round trip for the trust seeds and reputation of the whole selection: the
    # accounts/reputation functions only issue single commands, so a pipeline serves.
    feed = r.pipeline(transaction=False)
    as_client = cast("redis.Redis[bytes]", feed)
    for event, _ in decided:
        (result.approved if approve else result.rejected).append(event.event_id)
        accounts.record_moderation(as_client, namespace, event.account_id, approved=approve)
        reputation.record_outcome(as_client, namespace, event.account_id, agreed=approve)
    feed.execute()
    return result


def undo(
    pipeline: Pipeline,
    namespace: str,
    event_ids: Sequence[str],
    actor: str,
    window_s: float,
    note: str = "",
) -> UndoResult:
    """Send items `actor` approved or rejected less than `window_s` ago back to review.

    An undone approval is quarantined in the store (a new dataset version; the row
    stays, as everywhere in the store) and restored if approved again. The trust
    seed and reputation counts the decision added are taken back."""
    result = UndoResult()
    r = pipeline.r
    by = MODERATOR_PREFIX + actor
    with r.lock(ledger.lock_key(namespace), timeout=STATUS_LOCK_TIMEOUT_S):
        ids = list(dict.fromkeys(event_ids))
        records = ledger.load(r, namespace, ids)
        now = datetime.now(UTC)
        back: list[tuple[ledger.Record, Decision]] = []
        for event_id, record in zip(ids, records, strict=True):
            if (
                record is None
                or record.decision.status not in ("admitted", "rejected")
                or record.decision.decided_by != by
                or (now - record.decision.decided_at).total_seconds() > window_s
            ):
                result.refused.append(event_id)
                continue
            before = _last_review(record)
            again = before.model_copy(
                update={"status": "review", "decided_at": now, "decided_by": by}
            )
            back.append((record, again))
        unapproved = [rec.event.event_id for rec, _ in back if rec.decision.status == "admitted"]
        if unapproved:
            pipeline.store.quarantine(unapproved, reason="moderator undid approval", actor=actor)
        pipe = r.pipeline(transaction=True)
        ledger.write_records(
            pipe,
            namespace,
            [
                (
                    rec.event.event_id,
                    ledger.encode_record(rec.event.to_json(), _dump([*rec.trail, d])),
                )
                for rec, d in back
            ],
            None,  # waiting again: never expires
        )
        for rec, again in back:
            event_id = rec.event.event_id
            pipe.zadd(ledger.review_key(namespace), {event_id: rec.event.received_at.timestamp()})
            queue.index(pipe, namespace, event_id, ledger.Record(rec.event, (*rec.trail, again)))
            pipe.hincrby(ledger.stats_key(namespace), rec.decision.status, -1)
            pipe.hincrby(ledger.stats_key(namespace), "review", 1)
            approved = rec.decision.status == "admitted"
            account = rec.event.account_id
            pipe.zincrby(accounts.moderation_key(namespace, approved), -1, account)
            pipe.hincrby(
                reputation.reputation_key(namespace), f"{account}:{'+' if approved else '-'}", -1
            )
            result.undone.append(event_id)
        if back:
            audit.record(
                pipe, actor, "review.undo", namespace=namespace, event_ids=result.undone, note=note
            )
        pipe.execute()
    return result


def _last_review(record: ledger.Record) -> Decision:
    """The decision that put the item in review (its reasons and risk)."""
    for decision in reversed(record.trail):
        if decision.status == "review":
            return decision
    return record.decision
