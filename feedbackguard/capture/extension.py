"""The Flask extension: `FeedbackGuard`, its decorator and its route table."""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

import flask

from feedbackguard.capture.senders import BufferedSender
from feedbackguard.capture.sources import FeedbackSpec
from feedbackguard.capture.state import Capture, CaptureCounters
from feedbackguard.capture.validate import SPEC_ATTRIBUTE, decorated_spec
from feedbackguard.settings import Settings

EXTENSION = "feedbackguard"
ROUTES_KEY = "FEEDBACKGUARD_ROUTES"

F = TypeVar("F", bound=Callable[..., Any])


class FeedbackGuard:
    """The Flask extension: `FeedbackGuard(app)`, or `FeedbackGuard()` then
    `init_app(app)` for each of several apps.

    `init_app` reads the app's config (`FEEDBACKGUARD_*` keys and the route table
    `FEEDBACKGUARD_ROUTES`) unless `settings` were given, and keeps the app's state, a
    `Capture`, in `app.extensions["feedbackguard"]`: apps sharing one guard keep their
    own config, counters, spool and connections. The guard itself only remembers
    (weakly) which apps it serves, for `close()` and for use outside an app context.

    Mistakes fail loudly, never per request: a spec with an unknown source prefix or
    kind is refused by `feedback(...)` and a bad route-table entry by `init_app`
    (`CaptureConfigError` naming the entry); what needs the app's routes (route-table
    endpoints that exist, `view:` variables of the rules) is checked by
    `validate(app)`, to call once the routes are registered, or else before the
    app's first request, which then fails with the same error. Endpoints that never
    supply the account's age are logged once as a WARNING.

    Constructing the guard and `init_app` start nothing. The first feedback request of
    each process opens the Redis connection and starts the spool-retry thread (and,
    in buffered mode, the flush thread and its flush at process exit). Without
    `FEEDBACKGUARD_REDIS_URL` (the embedded default) that first request also starts
    the embedded redis-server under `FEEDBACKGUARD_HOME`; with a URL configured none is
    ever started. `close()` flushes, stops the threads and closes the connections.
    `clock` is the breakers' time source (tests pass a fake one).
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._apps: list[weakref.ref[flask.Flask]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask, *, settings: Settings | None = None) -> Capture:
        chosen = settings or self._settings or Settings.from_mapping(app.config)
        capture = Capture(chosen, app.config.get(ROUTES_KEY) or {}, clock=self._clock)
        app.extensions[EXTENSION] = capture
        app.before_request(_before_request)
        self._apps.append(weakref.ref(app))
        return capture

    def feedback(self, **spec: Any) -> Callable[[F], F]:
        """Decorator marking a view as a feedback endpoint (see feedbackguard.capture)."""
        compiled = FeedbackSpec.build(spec, "@feedback")

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                refused = _capture_of(flask.current_app).capture(compiled)
                if refused is not None:
                    return refused
                return view(*args, **kwargs)

            setattr(wrapper, SPEC_ATTRIBUTE, compiled)
            return cast(F, wrapper)

        return decorate

    def validate(self, app: flask.Flask | None = None) -> None:
        """Check the app's feedback endpoints against its routes now (once the routes
        are registered, e.g. at the end of the app factory): `CaptureConfigError`
        naming every bad entry. Without this call the check runs before the app's
        first request."""
        app = app or self._app_or_current()
        _capture_of(app).validate(app)

    def capture_of(self, app: flask.Flask | None = None) -> Capture:
        """The state for `app`, else the current app, else the first app served."""
        return _capture_of(app or self._app_or_current())

    @property
    def counters(self) -> CaptureCounters:
        return self.capture_of().counters

    def replay_spool(self, app: flask.Flask | None = None) -> int:
        """Replay the spool now (the background thread does it every spool_retry_s)."""
        return self.capture_of(app).replay_spool()

    def flush(self, app: flask.Flask | None = None) -> None:
        """Send what the buffered mode holds now (no-op in sync mode)."""
        sender = self.capture_of(app).sender
        if isinstance(sender, BufferedSender):
            sender.flush()

    def close(self) -> None:
        """Flush, stop the background threads and close the Redis clients of every app."""
        for app in self._served():
            capture = app.extensions.get(EXTENSION)
            if isinstance(capture, Capture):
                capture.close()

    def _app_or_current(self) -> flask.Flask:
        """The current app, else the first app served."""
        app = flask.current_app if flask.has_app_context() else None
        if app is None:
            app = next(iter(self._served()), None)
        if app is None:
            raise RuntimeError("FeedbackGuard is not initialised on any app")
        return app

    def _served(self) -> list[flask.Flask]:
        return [app for ref in self._apps if (app := ref()) is not None]


def _capture_of(app: flask.Flask) -> Capture:
    return cast(Capture, app.extensions[EXTENSION])


def _before_request() -> flask.Response | None:
    """before_request: the app's routes checked (once), then capture for endpoints
    named in FEEDBACKGUARD_ROUTES (unless the view is decorated, which wins, so an
    event is never captured twice)."""
    app = cast(flask.Flask, flask.current_app._get_current_object())  # type: ignore[attr-defined]
    capture = _capture_of(app)
    capture.validate(app)
    endpoint = flask.request.endpoint
    if endpoint is None:
        return None
    spec = capture.routes.get(endpoint)
    if spec is None or decorated_spec(app.view_functions.get(endpoint)) is not None:
        return None
    return capture.capture(spec)
