"""The check interface: one batch of events in, reasons for some of them out.

A check never decides; it reports. The decision engine (`feedbackguard.pipeline.decide`)
combines every check's reasons into a risk and a status under the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import redis

from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy

if TYPE_CHECKING:
    from feedbackguard.store import Store


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an event is suspect. `code` is a stable string (docs/architecture.md); `score` in 0..1
    is the risk this reason alone carries."""

    code: str
    detail: str
    score: float


Findings = dict[int, list[Reason]]
"""Index of the event in the batch -> its reasons. Clean events are absent."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may use besides the batch. All events of a batch share `namespace`;
    `earlier` holds the reasons the checks before this one found."""

    redis: redis.Redis[bytes]
    policy: Policy
    namespace: str
    earlier: Findings = field(default_factory=dict)


class Check(Protocol):
    """A per-batch check. Must be idempotent: a redelivered batch may be checked twice."""

    name: str

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings: ...


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    """What a periodic analyser may use. `now` is the namespace's event-time clock
    (epoch seconds): analysers look at the window of event time ending there."""

    redis: redis.Redis[bytes]
    policy: Policy
    namespace: str
    now: float
    store: Store


Verdicts = dict[str, list[Reason]]
"""event_id -> reasons found for it by an analyser. The pipeline re-judges those events:
pending or in-review ones are decided again, admitted ones are quarantined when their
new risk would not have admitted them."""


class Analyser(Protocol):
    """A periodic analysis over a window of recent events (graph, consistency...).

    It may refresh whatever caches its ingest-time check reads, and returns reasons
    against events seen earlier. Must be idempotent: reasons it returns again with the
    same codes and scores change nothing.
    """

    name: str

    def __call__(self, ctx: AnalysisContext) -> Verdicts: ...
