"""The URL converter for event ids in review routes.

An event id is any non-empty string the product chose (up to `MAX_ID_CHARS`), so it may
hold `/`, `%`, spaces, a leading slash or doubled slashes. Werkzeug's `path` converter
refuses a leading `/` and the map merges `//`, so the review routes use this converter
(every character, slashes included) and turn slash merging off on those rules.
"""

from __future__ import annotations

from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

CONVERTER = "event_id"


class EventIdConverter(PathConverter):
    """Matches the rest of the path, whatever it holds; `url_for` keeps `/` as is and
    percent-encodes everything else that needs it."""

    regex = ".+"
    part_isolating = False  # set explicitly: Werkzeug guesses it from a "/" in regex


def install(state: BlueprintSetupState) -> None:
    """Make `<event_id:...>` known to the app the review blueprint is registered on."""
    state.app.url_map.converters.setdefault(CONVERTER, EventIdConverter)
