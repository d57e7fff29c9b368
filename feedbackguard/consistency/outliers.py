"""Behavioural outliers (`outlier`): an IsolationForest over per-account behaviour in
the recent window, refit by each analysis run.

Per account: events, rate (events per hour of its active span), median gap between
its events, mean popularity of the items it touched, agreement with the model's
output and with the majority value of its items, and account age. Accounts the forest
isolates (its `contamination` share) are cached in Redis; their events get `outlier`
(a weak reason alone: heavy honest users are unusual too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import redis
from scipy import sparse
from sklearn.ensemble import IsolationForest

from feedbackguard import keys
from feedbackguard.consistency import scores
from feedbackguard.consistency.recent import Recent
from feedbackguard.policy import Outliers

CODE = "outlier"
FEATURES = (
    "events",
    "rate_per_h",
    "median_gap_s",
    "item_popularity",
    "model_agreement",
    "item_agreement",
    "age_days",
)


def account_features(window: Recent) -> tuple[list[str], npt.NDArray[np.float64]]:
    """(accounts, one row of FEATURES per account), vectorised over the window."""
    names, account = np.unique(np.asarray(window.accounts, dtype=np.str_), return_inverse=True)
    _, item = np.unique(np.asarray(window.items, dtype=np.str_), return_inverse=True)
    _, value = np.unique(np.asarray(window.values, dtype=np.str_), return_inverse=True)
    n_acc = len(names)
    events = np.bincount(account, minlength=n_acc).astype(np.float64)
    t = window.time
    first = np.full(n_acc, np.inf)
    last = np.full(n_acc, -np.inf)
    np.minimum.at(first, account, t)
    np.maximum.at(last, account, t)
    rate = events / ((last - first) / 3600.0 + 1.0)
    order = np.lexsort((t, account))
    gaps = np.diff(t[order])
    same = account[order][1:] == account[order][:-1]
    gap_sum = np.bincount(account[order][1:][same], weights=gaps[same], minlength=n_acc)
    mean_gap = np.where(events > 1, gap_sum / np.maximum(events - 1, 1), 86400.0)
    popularity = np.bincount(item).astype(np.float64)[item]
    item_pop = np.bincount(account, weights=popularity, minlength=n_acc) / events
    has_model = np.array([m is not None for m in window.model], dtype=bool)
    agrees = np.array(
        [m == v for m, v in zip(window.model, window.values, strict=True)], dtype=bool
    )
    model_n = np.bincount(account, weights=has_model.astype(float), minlength=n_acc)
    model_ok = np.bincount(account, weights=(agrees & has_model).astype(float), minlength=n_acc)
    model_agreement = np.where(model_n > 0, model_ok / np.maximum(model_n, 1), 1.0)
    votes = sparse.csr_matrix((np.ones(len(item)), (item, value)))
    majority = np.asarray(votes.argmax(axis=1)).ravel()
    item_ok = np.bincount(account, weights=(value == majority[item]).astype(float), minlength=n_acc)
    created = np.full(n_acc, np.nan)
    np.fmin.at(created, account, window.created)
    age = np.where(np.isnan(created), -1.0, (last - created) / 86400.0)
    matrix = np.column_stack(
        [
            np.log1p(events),
            np.log1p(rate),
            np.log1p(mean_gap),
            np.log1p(item_pop),
            model_agreement,
            item_ok / events,
            np.log1p(np.maximum(age, 0.0)),
        ]
    )
    return names.tolist(), matrix


def fit(window: Recent, policy: Outliers) -> dict[str, float]:
    """Accounts the forest isolates -> their score (negative; lower is stranger)."""
    if len(window) == 0:
        return {}
    names, matrix = account_features(window)
    if len(names) < policy.min_accounts:
        return {}
    # What `IsolationForest(contamination=c).fit_predict` + `decision_function` give,
    # with the accounts scored once instead of three times (fit, predict, decision;
    # scoring is most of the cost, docs/benchmarks.md).
    forest = IsolationForest(contamination="auto", random_state=policy.seed).fit(matrix)
    raw = forest.score_samples(matrix)
    score = raw - np.percentile(raw, 100.0 * policy.contamination)
    return {
        name: round(float(s), 4) for name, s in zip(names, score.tolist(), strict=True) if s < 0
    }


def save(r: redis.Redis[bytes], namespace: str, found: dict[str, float]) -> None:
    scores.replace(r, keys.outliers(namespace), found)


def flagged(r: redis.Redis[bytes], namespace: str, accounts: Sequence[str]) -> list[bool]:
    odd = scores.lookup(r, keys.outliers(namespace), accounts)
    return [a in odd for a in accounts]
