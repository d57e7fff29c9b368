"""Attacker text shown to moderators, with its bidirectional controls made visible.

Autoescaping keeps markup inert, but Unicode bidi controls (embeddings, overrides,
isolates, directional marks) pass through it and make the browser draw the text
around them reversed or reordered: an account id or a label could read as something
else than it is. The review templates pass every attacker-controlled string they
display through the `bidi_inert` filter, which shows each such control as its
escape (`\\u202e`), the way the CLI (`feedbackguard.cli.store.inert`) prints them.
Values that must round-trip (hidden form fields, URLs) keep their exact text.
"""

from __future__ import annotations

from typing import Final

FILTER: Final = "bidi_inert"

BIDI_CONTROLS: Final = frozenset(
    "\u061c"  # arabic letter mark
    "\u200e\u200f"  # left-to-right / right-to-left mark
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # isolates, pop isolate
)
_TABLE: Final = {ord(c): f"\\u{ord(c):04x}" for c in BIDI_CONTROLS}


def bidi_inert(value: object) -> str:
    """`value` as text, every bidi control replaced by its visible escape."""
    return str(value).translate(_TABLE)
