"""The errors a store operation raises."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation that cannot be carried out."""


class NotAdmittedError(ValueError):
    """`admit` was given an item whose decision trail does not end in `admitted`."""


class IntegrityError(StoreError):
    """Signed content does not verify: the store was changed outside feedbackguard."""


class StoreKeyError(StoreError):
    """The signing key is missing, or is not the key the store is signed with."""


class LegacyStoreError(StoreError):
    """The store was written before the hash chain: `feedbackguard store init` upgrades it."""
