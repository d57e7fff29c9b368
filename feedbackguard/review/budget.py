"""The review team's capacity: which cases it can reach in time, and how far behind it is.

The policy gives a capacity in cases a day per namespace (`policy.review`). Walking
the open cases in triage order (`review.cases`), the team reaches the k-th case it
keeps k x (1 day / capacity) after now (event time). A case it would reach only after
its oldest event's probation would have ended is over budget: it gets the safe
default at once (`casework.default`: its events rejected with reason
`review.over_budget`, never admitted) instead of waiting unseen, and does not take a
place in the line. Cases a moderator holds are left alone. A moderator can still
reopen and decide an over-budget case while its records last; an approval then
reaches the store.

`enforce` runs after every analysis run (`Pipeline.analyse`); `review.backlog` says
how far behind the team is.
"""

from __future__ import annotations

import time
from typing import Final

from feedbackguard import keys
from feedbackguard.pipeline import ledger, state
from feedbackguard.review import cases, casework

DAY_S: Final = 86400.0
"""Capacity is in cases a day."""


def over_budget(
    ranked: list[tuple[str, float]], now: float, capacity: float, probation_s: float
) -> list[str]:
    """The cases of `ranked` ((case, oldest event's received_at), in triage order) a
    team deciding `capacity` cases a day cannot reach before their probation ends."""
    per_case = DAY_S / capacity
    kept = 0
    out: list[str] = []
    for case_id, oldest in ranked:
        if now + (kept + 1) * per_case > oldest + probation_s:
            out.append(case_id)
        else:
            kept += 1
    return out


def enforce(records: state.Records, namespace: str, now: float | None = None) -> int:
    """Give the safe default to the open cases over budget at `now` (event time; the
    namespace's clock by default). Returns how many events it decided."""
    r = records.r
    policy = records.policies.current().policy
    cases.forget_closed(r, namespace, time.time() - policy.outcome_ttl_s)
    capacity = policy.review.capacity(namespace)
    if capacity <= 0:
        return 0
    at = ledger.clock(r, namespace) if now is None else now
    by = cases.order(r, namespace)
    key = keys.case_by_harm(namespace) if by == "harm" else keys.case_by_risk(namespace)
    ranked = [raw.decode() for raw in r.zrevrange(key, 0, -1)]
    if not ranked:
        return 0
    oldest = r.zmscore(keys.case_by_age(namespace), ranked)
    found = over_budget(
        [(c, t) for c, t in zip(ranked, oldest, strict=True) if t is not None],
        at,
        capacity,
        policy.probation_s,
    )
    if not found:
        return 0
    detail = (
        f"the review team's capacity ({capacity:g} cases a day) could not reach this case "
        "before its probation ended"
    )
    return casework.default(records, namespace, found, detail)
