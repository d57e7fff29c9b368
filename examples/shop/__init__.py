"""A support desk whose ticket classifier learns from agents' corrections.

`python -m examples.shop` or `flask --app examples.shop.app run`. The feedback
endpoint, POST /tickets/<id>/feedback, is wrapped by FeedbackGuard.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
