"""Known backdoor triggers (`trigger.known`): text patterns in `payload.text` and
feature rules on `payload.features`, from the policy's `consistency.triggers`.

Triggers the consistency analyser discovers itself are `consistency.triggers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import FeatureRule, TextPattern, compile_trigger

TRIGGER = "trigger.known"


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[TextPattern, ...]:
    # Compiled one by one: a pattern may carry its own global flags, e.g. (?i). RE2
    # matches in time linear in the text, whatever the pattern (attacker text meets
    # admin-written regexes here).
    return tuple(compile_trigger(p) for p in patterns)


def scanned(text: str, limit: int) -> str:
    """The first `limit` bytes of `text` (UTF-8), cut at a character boundary: the
    part trigger patterns are matched against."""
    if len(text) * 4 <= limit:
        return text
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


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
            text = scanned(payload.text, policy.scan_bytes) if payload.text else None
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
