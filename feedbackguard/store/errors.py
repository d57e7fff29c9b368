"""The errors a store operation raises."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation that cannot be carried out."""


class NotAdmittedError(ValueError):
    """`admit` was given an item whose decision trail does not end in `admitted`."""


class IntegrityError(StoreError):
    """Signed content does not verify: the store was changed outside feedbackguard."""
