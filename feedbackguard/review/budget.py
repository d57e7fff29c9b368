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

`enforce` runs after every analysis run (`Pipeline.analyse`). `status` is what the UI,
the API, `feedbackguard review status` and `/metrics` show: the backlog, the age of
the oldest case, cases decided in the last day and cases over budget. `load` counts
the cases and moderator actions a namespace's queue needs (for `bench detect`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import redis

from feedbackguard import keys
from feedbackguard.pipeline import ledger, state
from feedbackguard.review import cases, casework

DAY_S: Final = 86400.0


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


@dataclass(frozen=True)
class Status:
    """How far behind the review team of a namespace is."""

    namespace: str
    capacity_per_day: float
    """0: no limit."""
    open_cases: int
    waiting_events: int
    oldest_case_age_s: float
    """Event time since the oldest open case's oldest event (0 without cases)."""
    decided_last_day: int
    """Moderators' case actions in the last 24 h (wall time, undone ones excluded)."""
    over_budget_cases: int
    """Cases given the safe default and not reopened (while remembered)."""
    order: str
    """"harm" (expected harm) or "risk" (risk x events, while no harm estimate)."""


def status(r: redis.Redis[bytes], namespace: str, capacity: float) -> Status:
    now = time.time()
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.case_by_risk(namespace))
    pipe.zcard(keys.review(namespace))
    pipe.zrange(keys.case_by_age(namespace), 0, 0, withscores=True)
    pipe.zcount(keys.case_decided(namespace), now - DAY_S, "+inf")
    pipe.zcard(keys.case_over(namespace))
    open_cases, waiting, oldest, decided, over = pipe.execute()
    clock = ledger.clock(r, namespace)
    return Status(
        namespace=namespace,
        capacity_per_day=capacity,
        open_cases=int(open_cases),
        waiting_events=int(waiting),
        oldest_case_age_s=max(0.0, clock - float(oldest[0][1])) if oldest else 0.0,
        decided_last_day=int(decided),
        over_budget_cases=int(over),
        order=cases.order(r, namespace),
    )


@dataclass(frozen=True)
class Load:
    """What a namespace's review queue costs the team."""

    review_cases: int
    """Cases opened so far (each a group's, an item's or an account's events)."""
    review_actions: int
    """Moderator actions needed to clear the queue now: one per open case (a case is
    approved, rejected or split in one action)."""
    waiting_events: int
    over_budget_cases: int


def load(r: redis.Redis[bytes], namespace: str) -> Load:
    """The cases and moderator actions of a namespace's review queue (for
    `bench detect`, which reports them per 10,000 events)."""
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.case_seq(namespace))
    pipe.zcard(keys.case_by_risk(namespace))
    pipe.zcard(keys.review(namespace))
    pipe.zcard(keys.case_over(namespace))
    created, open_cases, waiting, over = pipe.execute()
    return Load(
        review_cases=int(created or 0),
        review_actions=int(open_cases),
        waiting_events=int(waiting),
        over_budget_cases=int(over),
    )
