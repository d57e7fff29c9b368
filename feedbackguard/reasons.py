"""Why an event is suspect: the one `Reason` that checks and analysers report, the
decision engine weighs and every decision carries (docs/architecture.md, "Decision").

It imports nothing else of feedbackguard's, so the decision contract does not depend
on the checks that produce reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True, slots=True)
class Reason:
    """`code` is a stable string moderators and dashboards filter on
    (`rate_limited.account`, `sybil.cluster`, `consistency.knn`, ...); `score` in 0..1
    is the risk this reason alone carries.

    A plain dataclass: checks make many of them per batch, and pydantic validates the
    ones read back from JSON (as a field of `Decision`).
    """

    code: str
    detail: str
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    group: str = ""
    """The group the finding is about, for findings about a group of accounts (a
    lockstep group, a dense block, an infrastructure cluster): a stable id, the same
    for every member and from one analysis run to the next while the group lasts.
    The review queue gathers a group's events into one case by it. Empty otherwise."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"reason {self.code!r}: score {self.score!r} is not in 0..1")
