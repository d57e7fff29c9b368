"""Per-account reliability (the interface other modules call).

A Beta posterior of agreement with final outcomes (moderators' decisions, consensus),
kept by `feedbackguard.reputation`; the prior is the current policy's
`consistency.reputation` unless given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import redis

from feedbackguard import reputation as _store
from feedbackguard.policy import Reputation
from feedbackguard.policystore import PolicyStore


def record_outcome(r: redis.Redis[bytes], namespace: str, account_id: str, agreed: bool) -> None:
    """Count one final outcome of the account's feedback (agreed with it or not)."""
    _store.record_outcome(r, namespace, account_id, agreed)


def reliability(
    r: redis.Redis[bytes],
    namespace: str,
    account_ids: Sequence[str],
    prior: Reputation | None = None,
) -> npt.NDArray[np.float64]:
    """Posterior mean agreement of each account (the prior's mean when unjudged)."""
    if prior is None:
        prior = PolicyStore(r).current().policy.consistency.reputation
    return _store.reliability(r, namespace, account_ids, prior)
