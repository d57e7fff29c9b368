"""The consistency layer's periodic analysis (a `checks.base.Analyser`).

At most once per `consistency.recent.every_s` of event time, over the recent window
(`consistency.recent`) with each event's current status:

1. refresh the kNN reference set: the seed plus the window's admitted events with
   features (newest `knn.reference_max`), and re-check pending and admitted events
   against it (events ingested before the reference existed get their
   `consistency.knn` now; an admitted label it shows wrong is quarantined);
2. discover suspected triggers; every pending, in-review or admitted event carrying
   one (new or known) gets `trigger.suspected` (admitted ones are quarantined by the
   pipeline's re-decision);
3. mark unreliable labellers (`consistency.unreliable`, by label agreement, a label
   the item's independent consensus backs never counting as disputed): their events
   get `consistency.reputation`;
4. refit the outlier forest; pending events of isolated accounts get `outlier`;
5. judge every waiting label against the item's consensus again, with today's
   weights (`consistency.consensus`): its `consistency.consensus` and
   `consistency.support` reasons follow;
6. test the label distribution for drift (alerts, optionally lockdown).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from feedbackguard import keys
from feedbackguard.checks.base import AnalysisContext, Reason, Verdicts
from feedbackguard.consistency import consensus, drift, knn, outliers, recent, triggers, unreliable

JUDGED = frozenset({"pending", "review", "admitted"})


class ConsistencyAnalyser:
    name = "consistency"

    def __init__(self, *, incremental: bool = True) -> None:
        self.incremental = incremental
        self.rows = recent.RowCache()

    def __call__(self, ctx: AnalysisContext) -> Verdicts:
        policy = ctx.policy.consistency
        raw = ctx.redis.get(keys.consistency_last_run(ctx.namespace))
        if raw is not None and ctx.now - float(raw) < policy.recent.every_s:
            return {}
        window = (
            self.rows.load(ctx.redis, ctx.namespace)
            if self.incremental
            else recent.load(ctx.redis, ctx.namespace)
        )
        window = window.with_statuses(recent.statuses(ctx.redis, ctx.namespace, window.event_ids))
        status = np.asarray(window.statuses, dtype=np.str_)
        ids = window.event_ids
        verdicts: Verdicts = {}
        flagged: set[int] = set()

        def add(index: int, reason: Reason) -> None:
            verdicts.setdefault(ids[index], []).append(reason)
            flagged.add(index)

        rows, matrix = window.feature_matrix()
        values = [window.values[i] for i in rows.tolist()]
        # Incremental: every row's kNN disagreement is found once per run, each distinct
        # feature row queried once, and serves both the kNN re-check and the unreliable
        # labellers (a row's neighbours do not depend on the other rows queried with
        # it); full: each queries every row on its own.
        shared: np.ndarray | None = None
        if policy.knn.enabled and len(rows):
            self._refresh_reference(ctx, rows, matrix, values, status)
            reference = knn.current(ctx.redis, ctx.namespace, policy.knn)
            # Pending labels, and admitted ones (admitted before this reference
            # existed, or before it knew better: quarantined if now found wrong).
            waiting = np.flatnonzero(np.isin(status[rows], ("pending", "admitted")))
            if reference is not None and reference.width != matrix.shape[1]:
                reference = None  # learnt on features of another width: no yardstick
            if reference is not None and self.incremental:
                shared = reference.disagreement_once(matrix, values)
            if reference is not None and len(waiting):
                share = (
                    shared[waiting]
                    if shared is not None
                    else reference.disagreement(matrix[waiting], [values[j] for j in waiting])
                )
                score = knn.scores(share, policy.knn)
                k = min(policy.knn.k, len(reference.labels))
                for j in np.flatnonzero(score > 0).tolist():
                    add(
                        int(rows[waiting[j]]),
                        Reason(knn.CODE, knn.detail(float(share[j]), k), float(score[j])),
                    )
        votes = consensus.Votes(ctx, window, status)
        if policy.unreliable.enabled:
            self._unreliable(ctx, window, rows, matrix, values, status, votes, add, shared)
        if policy.discovery.enabled and len(rows):
            found = triggers.discover(window, rows, matrix, policy.discovery, ctx.now)
            triggers.save(ctx.redis, ctx.namespace, found, actor="analysis")
            judged = np.isin(status[rows], list(JUDGED))
            for trigger in triggers.load(ctx.redis, ctx.namespace):
                if trigger.width != matrix.shape[1]:
                    continue
                hit = trigger.matches(matrix, values) & judged
                reason = Reason(triggers.CODE, trigger.describe(), policy.discovery.score)
                for j in np.flatnonzero(hit).tolist():
                    add(int(rows[j]), reason)
        if policy.outliers.enabled:
            odd = outliers.fit(window, policy.outliers)
            outliers.save(ctx.redis, ctx.namespace, odd)
            if odd:
                reason = Reason(
                    outliers.CODE, "the account's behaviour is an outlier", policy.outliers.score
                )
                for index in np.flatnonzero(status == "pending").tolist():
                    if window.accounts[index] in odd:
                        add(index, reason)
        for index, reasons in consensus.recheck(ctx, votes, status, flagged).items():
            verdicts.setdefault(ids[index], []).extend(reasons)
        if policy.drift.enabled:
            found_shifts = drift.shifts(window, ctx.now, policy.drift)
            drift.alert(ctx.redis, ctx.namespace, found_shifts, ctx.now, policy.drift)
        ctx.redis.set(keys.consistency_last_run(ctx.namespace), repr(ctx.now))
        return verdicts

    @staticmethod
    def _unreliable(
        ctx: AnalysisContext,
        window: recent.Recent,
        rows: np.ndarray,
        matrix: np.ndarray,
        values: list[str],
        status: np.ndarray,
        votes: consensus.Votes,
        add: Callable[[int, Reason], None],
        shared: np.ndarray | None,
    ) -> None:
        """`shared`: every row's kNN disagreement when the run already found it."""
        policy = ctx.policy.consistency
        share = np.zeros(len(rows)) if shared is None else shared
        if shared is None and policy.knn.enabled and len(rows):
            reference = knn.current(ctx.redis, ctx.namespace, policy.knn)
            if reference is not None and reference.width == matrix.shape[1]:
                share = reference.disagreement(matrix, values)
        disputed = unreliable.disputed(window, rows, share, policy) & ~votes.supported()
        odd = unreliable.labellers(window, disputed, policy)
        unreliable.save(ctx.redis, ctx.namespace, odd)
        if not odd:
            return
        judged = np.isin(status, list(JUDGED))
        for index in np.flatnonzero(judged).tolist():
            agreement = odd.get(window.accounts[index])
            if agreement is not None:
                detail = unreliable.detail(agreement)
                add(index, Reason(unreliable.CODE, detail, policy.unreliable.score))

    @staticmethod
    def _refresh_reference(
        ctx: AnalysisContext,
        rows: np.ndarray,
        matrix: np.ndarray,
        values: list[str],
        status: np.ndarray,
    ) -> None:
        policy = ctx.policy.consistency.knn
        admitted = np.flatnonzero(status[rows] == "admitted")
        seeded = knn.seed(ctx.redis, ctx.namespace)
        parts_x = [matrix[admitted]]
        parts_y = [np.asarray(values, dtype=np.str_)[admitted]]
        if seeded is not None and seeded[0].shape[1:] == matrix.shape[1:]:
            parts_x.insert(0, seeded[0])
            parts_y.insert(0, seeded[1])
        features = np.concatenate(parts_x)[-policy.reference_max :]
        labels = np.concatenate(parts_y)[-policy.reference_max :]
        if len(features):
            knn.store_reference(ctx.redis, ctx.namespace, features, labels.tolist())
