"""feedbackguard: keep poisoned feedback out of the data your model retrains on."""

from __future__ import annotations

from feedbackguard.events import FeedbackEvent

__all__ = ["FeedbackEvent"]
__version__ = "0.1.0"
