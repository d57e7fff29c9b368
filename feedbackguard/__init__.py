"""feedbackguard: keep poisoned feedback out of the data your model retrains on.

    from feedbackguard import FeedbackGuard, FeedbackEvent

`FeedbackGuard` (the Flask extension, feedbackguard.capture) is imported on first
use, so that the worker side, which imports this package too, never loads Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedbackguard.events import FeedbackEvent

if TYPE_CHECKING:
    from feedbackguard.capture.extension import FeedbackGuard

__all__ = ["FeedbackEvent", "FeedbackGuard"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "FeedbackGuard":
        from feedbackguard.capture.extension import FeedbackGuard

        return FeedbackGuard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
