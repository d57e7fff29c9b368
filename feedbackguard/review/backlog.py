"""How far behind a namespace's review team is, and what its queue costs.

`status` is what the review UI, the API, `feedbackguard review status` and `/metrics`
show: the backlog (open cases, waiting events), the age of the oldest case, cases
decided in the last day and cases given the safe default for lack of capacity
(`review.budget`). `load` counts the cases and the moderator actions a namespace's
queue needs without knowing the truth (`bench detect` reports them per 10,000 events
with the splits' ticks added, judged with the simulator's truth:
`feedbackguard.bench.review_load`).

It reads only Redis (no store, no policy): `/metrics` imports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import redis

from feedbackguard import keys
from feedbackguard.pipeline import ledger
from feedbackguard.review import cases

DAY_S: Final = 86400.0


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


def status(r: redis.Redis[bytes], namespace: str, capacity: float = 0.0) -> Status:
    """The namespace's backlog; `capacity` (cases a day, from the policy) is only
    reported."""
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
    approved, rejected or split in one action). A lower bound: a split also needs its
    honest members ticked, which only the truth tells (`bench detect` counts those too,
    in `feedbackguard.bench.review_load`)."""
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
