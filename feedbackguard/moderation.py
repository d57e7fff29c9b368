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
from typing import Any

from feedbackguard import accounts, audit, ledger, reputation
from feedbackguard.decide import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import STATUS_LOCK_TIMEOUT_S, Pipeline

MODERATOR_PREFIX = "moderator:"


@dataclass
class ModerationResult:
    """Which items were decided; the others were not in review (already decided,
    expired or unknown) and are listed so the moderator sees why nothing happened."""

    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    not_in_review: list[str] = field(default_factory=list)


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
        for event_id, record in zip(ids, records, strict=True):
            if record is None or record.decision.status != "review":
                result.not_in_review.append(event_id)
                continue
            final = record.decision.model_copy(
                update={"status": status, "decided_at": now, "decided_by": MODERATOR_PREFIX + actor}
            )
            decided.append((record.event, [*record.trail, final]))
        if approve and decided:
            pipeline.store.admit(decided)  # idempotent on event_id: a retry stores nothing twice
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
    for event, _ in decided:
        (result.approved if approve else result.rejected).append(event.event_id)
        accounts.record_moderation(r, namespace, event.account_id, approved=approve)
        reputation.record_outcome(r, namespace, event.account_id, agreed=approve)
    return result
