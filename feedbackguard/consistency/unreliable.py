"""Unreliable labellers: accounts whose recent feedback is mostly disputed by
everything else we know. Their events get the reason `consistency.reputation`, a
stable code although what it measures is label agreement, not the moderator outcomes
of `accounts.reliability` (an account's reputation).

An event is disputed when its label disagrees with its kNN neighbours (share >=
`knn.min_disagreement`) or with a model output of confidence >= `model.min_confidence`.
Per account over the recent window, agreement is a Beta(prior.agree + undisputed,
prior.disagree + disputed) posterior (the policy's `consistency.reputation` prior,
shared with `accounts.reliability`); an account with at least `min_events` events
whose posterior mean is at most `max_agreement` is unreliable. Honest users are
disputed now and then (odd inputs, model mistakes); an account flipping labels is
disputed most of the time, so the events of its that each check alone let through
are caught as well.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import redis

from feedbackguard import keys
from feedbackguard.consistency import scores
from feedbackguard.consistency.recent import Recent
from feedbackguard.policy import Consistency

CODE = "consistency.reputation"
BoolArray = npt.NDArray[np.bool_]


def disputed(
    window: Recent, rows: npt.NDArray[np.int64], share: npt.NDArray[np.float64], policy: Consistency
) -> BoolArray:
    """Per window event: disputed by a confident model, or by its neighbours (`share`
    is the kNN disagreement of the events at `rows`)."""
    out = np.asarray(window.flips(policy.model.min_confidence), dtype=bool).copy()
    if len(rows):
        out[rows] |= share >= policy.knn.min_disagreement
    return out


def labellers(window: Recent, disputed: BoolArray, policy: Consistency) -> dict[str, float]:
    """Unreliable labellers -> their posterior mean agreement (`disputed`: per window
    event)."""
    if len(window) == 0:
        return {}
    names, account = np.unique(np.asarray(window.accounts, dtype=np.str_), return_inverse=True)
    total = np.bincount(account, minlength=len(names)).astype(np.float64)
    bad = np.bincount(account, weights=disputed.astype(np.float64), minlength=len(names))
    agreement_prior = policy.reputation
    agreement = (agreement_prior.agree + total - bad) / (
        agreement_prior.agree + agreement_prior.disagree + total
    )
    hit = (total >= policy.unreliable.min_events) & (agreement <= policy.unreliable.max_agreement)
    return {str(names[i]): round(float(agreement[i]), 4) for i in np.flatnonzero(hit).tolist()}


def save(r: redis.Redis[bytes], namespace: str, found: dict[str, float]) -> None:
    """Replace the cached unreliable labellers (read by `UnreliableCheck` at ingest)."""
    scores.replace(r, keys.unreliable(namespace), found)


def cached(r: redis.Redis[bytes], namespace: str, names: Sequence[str]) -> dict[str, float]:
    return scores.lookup(r, keys.unreliable(namespace), names)


def detail(agreement: float) -> str:
    return (
        "the account's recent feedback is mostly disputed by its neighbours or a "
        f"confident model (agreement {agreement:.0%})"
    )
