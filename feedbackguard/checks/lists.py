"""Admin deny lists: an event from a denied IP, subnet or device is rejected.

Reason `list.denied` with score 1 (certain: an admin said so). The lists are read
once per batch (one round trip); an empty set of lists costs only that read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy.lists import Snapshot

CODE: Final = "list.denied"
SCORE: Final = 1.0


class ListCheck:
    """Reason `list.denied` for events whose IP (exactly or by subnet) or device is on
    a deny list and not allowed by a more specific entry."""

    name = "lists"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        snap = Snapshot.load(ctx.redis)
        if snap.empty:
            return {}
        found: Findings = {}
        for index, event in enumerate(events):
            ip_says = snap.ip(event.ip)
            device_says = snap.device(event.device_id)
            if "deny" not in (ip_says, device_says):
                continue
            what = "ip" if ip_says == "deny" else "device"
            found[index] = [Reason(CODE, f"{what} on the admin deny list", SCORE)]
        return found
