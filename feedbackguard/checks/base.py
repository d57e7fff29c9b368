"""The check interface: one batch of events in, reasons for some of them out.

A check never decides; it reports. The decision engine (`feedbackguard.decide`)
combines every check's reasons into a risk and a status under the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an event is suspect. `code` is a stable string (DESIGN.md); `score` in 0..1
    is the risk this reason alone carries."""

    code: str
    detail: str
    score: float


Findings = dict[int, list[Reason]]
"""Index of the event in the batch -> its reasons. Clean events are absent."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may use besides the batch. All events of a batch share `namespace`."""

    redis: redis.Redis[bytes]
    policy: Policy
    namespace: str


class Check(Protocol):
    """A per-batch check. Must be idempotent: a redelivered batch may be checked twice."""

    name: str

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings: ...
