"""The consistency layer at ingest: its per-batch checks (each a `checks.base.Check`);
the periodic side is `consistency.analyser`.

* `LockdownCheck` (`lockdown`): every event of a locked-down namespace to review.
* `RecentRecorder`: appends the batch's label feedback to the recent window (no reason).
* `KnnCheck` (`consistency.knn`): label vs its k nearest admitted neighbours.
* `SuspectedTriggerCheck` (`trigger.suspected`): patterns the analyser discovered.
* `OutlierCheck` (`outlier`): accounts the last outlier fit isolated.
* `UnreliableCheck` (`consistency.reputation`, a stable code: it means label
  agreement, not `accounts.reliability`): labellers the last analysis found
  mostly disputed.

Each is switched by the policy's `consistency` section and does at most one or two
Redis round trips per batch; the per-event work is numpy over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.consistency import knn, outliers, recent, triggers, unreliable
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.graph.window import value_key
from feedbackguard.policy import lockdown

LOCKDOWN = "lockdown"


class LockdownCheck:
    name = "lockdown"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        if not events or not ctx.policy.consistency.lockdown:
            return {}
        if not lockdown.is_locked(ctx.redis, ctx.namespace):
            return {}
        reason = Reason(
            LOCKDOWN,
            "the namespace is locked down: a moderator decides",
            ctx.policy.thresholds.review,
        )
        return {index: [reason] for index in range(len(events))}


class RecentRecorder:
    name = "recent"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        if events:
            pipe = ctx.redis.pipeline(transaction=False)
            window = ctx.policy.consistency.recent
            recent.append(pipe, ctx.namespace, events, window.max_events, window.max_features)
            pipe.execute()
        return {}


def _with_features(
    events: Sequence[FeedbackEvent], width: int
) -> tuple[list[int], np.ndarray, list[str]]:
    """Label events whose features have `width` values: (indices, matrix, value keys)."""
    index = [
        i
        for i, e in enumerate(events)
        if e.kind in LABEL_KINDS
        and e.payload is not None
        and e.payload.features is not None
        and len(e.payload.features) == width
    ]
    matrix = np.array(
        [events[i].payload.features for i in index],  # type: ignore[union-attr]
        dtype=np.float64,
    ).reshape(len(index), width)
    return index, matrix, [value_key(events[i].value) for i in index]


class KnnCheck:
    name = "knn"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.knn
        if not policy.enabled or not events:
            return {}
        if not any(e.payload is not None and e.payload.features for e in events):
            return {}
        reference = knn.current(ctx.redis, ctx.namespace, policy)
        if reference is None:
            return {}
        index, matrix, values = _with_features(events, reference.width)
        if not index:
            return {}
        share = reference.disagreement_once(matrix, values)
        score = knn.scores(share, policy)
        k = min(policy.k, len(reference.labels))
        return {
            index[j]: [Reason(knn.CODE, knn.detail(float(share[j]), k), float(score[j]))]
            for j in np.flatnonzero(score > 0).tolist()
        }


class SuspectedTriggerCheck:
    name = "suspected_triggers"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.discovery
        if not policy.enabled or not events:
            return {}
        if not any(e.payload is not None and e.payload.features for e in events):
            return {}
        findings: Findings = {}
        for trigger in triggers.load(ctx.redis, ctx.namespace):
            index, matrix, values = _with_features(events, trigger.width)
            for j in np.flatnonzero(trigger.matches(matrix, values)).tolist():
                findings.setdefault(index[j], []).append(
                    Reason(triggers.CODE, trigger.describe(), policy.score)
                )
        return findings


class OutlierCheck:
    name = "outliers"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.outliers
        if not policy.enabled or not events:
            return {}
        names = sorted({e.account_id for e in events})
        odd = {
            n
            for n, f in zip(names, outliers.flagged(ctx.redis, ctx.namespace, names), strict=True)
            if f
        }
        if not odd:
            return {}
        reason = Reason(outliers.CODE, "the account's behaviour is an outlier", policy.score)
        return {i: [reason] for i, e in enumerate(events) if e.account_id in odd}


class UnreliableCheck:
    name = "unreliable"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.unreliable
        if not policy.enabled or not events:
            return {}
        odd = unreliable.cached(ctx.redis, ctx.namespace, sorted({e.account_id for e in events}))
        if not odd:
            return {}
        return {
            i: [Reason(unreliable.CODE, unreliable.detail(odd[e.account_id]), policy.score)]
            for i, e in enumerate(events)
            if e.account_id in odd
        }


def consistency_checks() -> list[
    LockdownCheck
    | RecentRecorder
    | KnnCheck
    | SuspectedTriggerCheck
    | OutlierCheck
    | UnreliableCheck
]:
    """This layer's checks, in order (after the consensus, model and known triggers)."""
    return [
        LockdownCheck(),
        RecentRecorder(),
        KnnCheck(),
        SuspectedTriggerCheck(),
        OutlierCheck(),
        UnreliableCheck(),
    ]
