"""Per-batch checks: each looks at a batch of events and says what is wrong with some."""

from __future__ import annotations

from feedbackguard.checks.base import Check, CheckContext, Findings, Reason

__all__ = ["Check", "CheckContext", "Findings", "Reason"]
