"""Known backdoor triggers (`trigger.known`): text patterns in `payload.text` and
feature rules on `payload.features`, from the policy's `consistency.triggers`.

Triggers the consistency analyser discovers itself are `consistency.triggers`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import FeatureRule

TRIGGER = "trigger.known"


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    # Compiled one by one: a pattern may carry its own global flags, e.g. (?i).
    return tuple(re.compile(p) for p in patterns)


def _feature_hit(rule: FeatureRule, features: list[float]) -> bool:
    if max(rule.indices) >= len(features):
        return False
    values = np.asarray(features)[list(rule.indices)]
    low = -np.inf if rule.low is None else rule.low
    high = np.inf if rule.high is None else rule.high
    return bool(np.all((values >= low) & (values <= high)))


class TriggerCheck:
    name = "triggers"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.triggers
        patterns = _compiled(policy.text)
        if not patterns and not policy.features:
            return {}
        findings: Findings = {}
        for index, event in enumerate(events):
            payload = event.payload
            if payload is None:
                continue
            text = payload.text
            match = next((m for p in patterns if text and (m := p.search(text))), None)
            if match is not None:
                detail = f"text matches a known trigger: {match.group(0)[:80]!r}"
                findings[index] = [Reason(TRIGGER, detail, policy.score)]
                continue
            if payload.features:
                for rule in policy.features:
                    if _feature_hit(rule, payload.features):
                        detail = f"features match trigger rule {rule.name!r}"
                        findings[index] = [Reason(TRIGGER, detail, policy.score)]
                        break
        return findings
