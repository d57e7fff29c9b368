"""Policy operations behind the admin API: the proposed policy of a request (a whole
one, or a patch merged key by key: `feedbackguard.policy.merge`), diffs between
versions, and the dry run (`feedbackguard.pipeline.dryrun`) as the API answers it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from feedbackguard.pipeline import dryrun
from feedbackguard.policy import Policy
from feedbackguard.policy.disables import disables
from feedbackguard.policy.merge import proposed as merged_proposal
from feedbackguard.policy.store import PolicyStore
from feedbackguard.web.admin import models as m


def as_json(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json")


def proposed(
    store: PolicyStore, whole: Mapping[str, Any] | None, patch: Mapping[str, Any] | None
) -> Policy:
    """The policy a request proposes against the one in force (see
    `policy.merge.proposed` for what it raises)."""
    return merged_proposal(store.current().policy, whole, patch)


def disabled_by(store: PolicyStore, policy: Policy) -> list[str]:
    """The defences and limits `policy` removes against the version in force."""
    return disables(store.current().policy, policy)


def _time(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def dry_run_out(report: dryrun.Report, current_version: int) -> m.DryRunOut:
    return m.DryRunOut(
        namespace=report.namespace,
        current_version=current_version,
        since=_time(report.since),
        until=_time(report.until),
        window_start=_time(report.window_start),
        events=report.events,
        missing=report.missing,
        truncated=report.truncated,
        changed=report.changed,
        moves=[
            m.MoveOut(
                old=move.old,
                new=move.new,
                count=move.count,
                reasons=dict(move.reasons.most_common()),
                populations=dict(move.populations.most_common()),
                examples=move.examples,
            )
            for move in report.moves
        ],
        baseline=report.baseline,
        candidate=report.candidate,
        live=m.LiveAgreement(
            compared=report.live_compared, agreed=report.live_agreed, moderated=report.moderated
        ),
        audit=report.audit,
        disables=report.disables,
        notes=report.notes,
        seconds=round(report.seconds, 3),
        method=report.method,
    )
