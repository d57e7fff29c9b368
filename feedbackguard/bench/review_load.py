"""What the review queue a bench run leaves behind costs the moderators, judged with the
simulator's truth.

`bench detect` reads it from the run's namespace before dropping it. The figures:

* `review_cases`: cases opened during the run (`backlog.load`), per 10,000 events;
* `review_actions`: moderator actions needed to clear the queue left at the end, per
  10,000 events, deciding every case right. A case that holds no honest event is
  rejected in one action, a case that holds no poison is approved in one action, and
  a case that holds both is split (`casework.decide(..., "split")`): one action plus
  one tick per honest member the split must approve (the case page lists a group's or
  an item's members by account, an account's case by event). So the figure is the open
  cases plus the splits' ticks; `backlog.load`'s `review_actions` (one per open case,
  no truth needed) is its lower bound;
* `first_honest_case_rank`: the 1-based place, in the queue's triage order
  (`cases.page`: by expected harm, or by risk x events while no event has a harm
  estimate), of the first case that holds an honest event (None: no such case);
* `poison_cases_above_honest`: whether every poison event waiting for review is in a
  case placed above every case holding an honest event (true when no poison waits or
  no honest event does). A case holding both is an honest case, so a mixed case makes
  it false.

"Honest" is the simulator's honest population (`Truth.population == HONEST`, crowds
included), as in the rest of `bench detect`; "poison" is `Truth.is_poison`. An
attacker's events that are not poison (camouflage, a compromised account's earlier
history) are neither: deciding them either way costs nothing, so they make a case
neither honest nor mixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

from feedbackguard.events import FeedbackEvent
from feedbackguard.review import backlog, cases
from feedbackguard.simulate import HONEST
from feedbackguard.simulate.world import Truth

PER_EVENTS: Final = 10_000
"""The figures' unit: per this many events of the run."""
PAGE: Final = 1000
"""Cases read per page when walking the queue in triage order."""


@dataclass(frozen=True)
class ReviewLoad:
    """The queue's cost, as counts (the per-10,000 figures come from `figures`)."""

    events: int
    """Events in the run (the figures' denominator)."""
    cases_opened: int
    open_cases: int
    mixed_cases: int
    """Open cases holding both poison and honest events (each needs a split)."""
    split_ticks: int
    """Honest members the splits must approve (accounts, or events in account cases)."""
    actions: int
    """open_cases + split_ticks."""
    poison_waiting: int
    honest_waiting: int
    first_honest_case_rank: int | None
    poison_cases_above_honest: bool
    order: cases.ByHarm

    def per_events(self, n: int) -> float:
        return round(n * PER_EVENTS / self.events, 2) if self.events else 0.0

    def figures(self) -> dict[str, Any]:
        """The four figures `bench detect` reports per run (and their worst per family)."""
        return {
            "review_cases": self.per_events(self.cases_opened),
            "review_actions": self.per_events(self.actions),
            "first_honest_case_rank": self.first_honest_case_rank,
            "poison_cases_above_honest": self.poison_cases_above_honest,
        }

    def counts(self) -> dict[str, Any]:
        """The counts behind the figures (reported beside them as `review_queue`)."""
        return {
            "cases_opened": self.cases_opened,
            "open_cases": self.open_cases,
            "mixed_cases": self.mixed_cases,
            "split_ticks": self.split_ticks,
            "actions": self.actions,
            "poison_waiting": self.poison_waiting,
            "honest_waiting": self.honest_waiting,
            "order": self.order,
        }


def queue_order(r: redis.Redis[bytes], namespace: str) -> list[str]:
    """Every open case id of the namespace, in the order the queue shows them."""
    out: list[str] = []
    cursor: str | None = None
    while True:
        found = cases.page(r, namespace, cases.Filters(), cursor=cursor, limit=PAGE)
        out.extend(found.ids)
        if found.cursor is None:
            return out
        cursor = found.cursor


def measure(
    r: redis.Redis[bytes],
    namespace: str,
    events: Sequence[FeedbackEvent],
    truth: Mapping[str, Truth],
) -> ReviewLoad:
    """The review load of `namespace`'s queue now, for a run of `events` whose truth
    is `truth` (see the module docstring)."""
    ranked = queue_order(r, namespace)
    rank = {case_id: n for n, case_id in enumerate(ranked, start=1)}
    kinds = {c.case_id: c.kind for c in cases.load(r, namespace, ranked) if c is not None}
    account = {e.event_id: e.account_id for e in events}

    def honest(event_id: str) -> bool:
        found = truth.get(event_id)
        return found is not None and found.population == HONEST

    def poison(event_id: str) -> bool:
        found = truth.get(event_id)
        return found is not None and found.is_poison

    mixed = ticks = poison_waiting = honest_waiting = 0
    honest_ranks: list[int] = []
    poison_ranks: list[int] = []
    for case_id in ranked:
        members = cases.members(r, namespace, case_id)
        good = [e for e in members if honest(e)]
        bad = [e for e in members if poison(e)]
        poison_waiting += len(bad)
        honest_waiting += len(good)
        if good:
            honest_ranks.append(rank[case_id])
        if bad:
            poison_ranks.append(rank[case_id])
        if good and bad:
            mixed += 1
            by_event = kinds.get(case_id) == "a"
            ticks += len(good) if by_event else len({account.get(e, e) for e in good})
    first_honest = min(honest_ranks, default=None)
    above = first_honest is None or all(n < first_honest for n in poison_ranks)
    return ReviewLoad(
        events=len(events),
        cases_opened=backlog.load(r, namespace).review_cases,
        open_cases=len(ranked),
        mixed_cases=mixed,
        split_ticks=ticks,
        actions=len(ranked) + ticks,
        poison_waiting=poison_waiting,
        honest_waiting=honest_waiting,
        first_honest_case_rank=first_honest,
        poison_cases_above_honest=above,
        order=cases.order(r, namespace),
    )
