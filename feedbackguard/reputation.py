"""Account reputation: how often an account's feedback held up when a final outcome
was known (moderators approved or rejected it), as a Beta posterior per namespace.

It weights the account's voice in the consensus (`checks.consistency`): a reliable
account counts more than one never judged, an often-rejected one less.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import redis

from feedbackguard import keys
from feedbackguard.policy import Reputation


def reputation_key(namespace: str) -> str:
    """Hash: "<account>:+" / "<account>:-" -> outcomes that agreed / disagreed."""
    return keys.ns(namespace, "reputation")


def record_outcome(r: redis.Redis[bytes], namespace: str, account_id: str, agreed: bool) -> None:
    r.hincrby(reputation_key(namespace), f"{account_id}:{'+' if agreed else '-'}", 1)


def reliability(
    r: redis.Redis[bytes], namespace: str, account_ids: Sequence[str], prior: Reputation
) -> npt.NDArray[np.float64]:
    """Posterior mean of each account's agreement (the prior's mean when unjudged)."""
    if not account_ids:
        return np.empty(0)
    fields = [f"{a}:{sign}" for a in account_ids for sign in "+-"]
    raw = r.hmget(reputation_key(namespace), fields)
    counts = np.array([int(x) if x else 0 for x in raw], dtype=np.float64).reshape(-1, 2)
    agreed, disagreed = counts[:, 0], counts[:, 1]
    return (prior.agree + agreed) / (prior.agree + prior.disagree + agreed + disagreed)
