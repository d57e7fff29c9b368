"""Independence weights: how much one account's voice counts next to the others'.

In the spirit of Community Notes' diversity requirement, accounts that act as one
count together: a cohort of N accounts that co-act (the same items, the same way, at
the same time), share infrastructure, were created together or burst-reported the
same item (any graph detector's group, flagged or not) weighs about as one account.
The graph analysis computes each account's weight, 1 / the size of the largest
cohort it belongs to, and publishes it (`keys.independence`); `weights` reads it.

Contract for readers (the label consensus, report counts):

* `weights(r, namespace, accounts)` returns one float per account, in 0..1;
* 1.0 means independent *or unknown* (not in the last analysis's window, or in no
  cohort): absence of evidence never lowers a weight;
* a member of a cohort of N gets 1/N, so a cohort's weights add up to about 1 and a
  brigade of N never outvotes two independent accounts;
* every graph analysis run replaces the whole table at once (a reader never sees
  half of one run's weights);
* a weight describes structure, not guilt: an honest class or office that acts
  together gets a low weight too. Multiply it into a vote's weight; never reject
  feedback on it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import redis

from feedbackguard import keys
from feedbackguard.graph.window import FloatArray, IntArray

WEIGHT_DIGITS = 4
"""Digits a weight is stored with (1/200 of a cohort of 200 is 0.005)."""


def cohort_weights(n_accounts: int, cohorts: Iterable[IntArray]) -> FloatArray:
    """Per account code, 1 / the size of the largest cohort holding it (1 if none).

    `cohorts` are arrays of account codes; a code repeated inside one cohort counts
    once, and cohorts of one account change nothing.
    """
    largest = np.ones(n_accounts, dtype=np.int64)
    for members in cohorts:
        distinct = np.unique(np.asarray(members, dtype=np.int64))
        if distinct.size > 1:
            np.maximum.at(largest, distinct, distinct.size)
    return 1.0 / largest


def publish(
    r: redis.Redis[bytes], namespace: str, account_ids: Sequence[str], weight: FloatArray
) -> None:
    """Replace the namespace's table with `weight` (per account of `account_ids`).

    Only weights below 1 are stored: every other account reads as 1, which keeps the
    table as small as the cohorts found.
    """
    key = keys.independence(namespace)
    staged = {
        account_ids[a]: repr(round(float(weight[a]), WEIGHT_DIGITS))
        for a in np.flatnonzero(weight < 1.0).tolist()
    }
    pipe = r.pipeline(transaction=True)
    if staged:
        pipe.delete(key + ":next")
        pipe.hset(key + ":next", mapping=staged)
        pipe.execute_command("RENAME", key + ":next", key)  # pipe.rename: blocked on a cluster
    else:
        pipe.delete(key)
    pipe.execute()


def weights(r: redis.Redis[bytes], namespace: str, accounts: Sequence[str]) -> list[float]:
    """Each account's independence weight in 0..1 from the last graph analysis, in the
    order asked; 1.0 for accounts it knows nothing against (see the module docstring)."""
    if not accounts:
        return []
    raw = r.hmget(keys.independence(namespace), list(accounts))
    return [1.0 if value is None else min(1.0, max(0.0, float(value))) for value in raw]
