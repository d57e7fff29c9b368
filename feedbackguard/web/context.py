"""Where the web blueprints (review UI/API, admin API) find their dependencies.

The Flask app that mounts them (`feedbackguard serve`, or the product's own app)
stores one `Runtime` in `app.extensions`; views reach it through `runtime()` so that
nothing lives in module globals and tests can build an app per test.
"""

from __future__ import annotations

from flask import Flask, current_app

from feedbackguard.pipeline.runtime import Runtime

EXTENSION_KEY = "feedbackguard.runtime"


def init_runtime(app: Flask, runtime: Runtime) -> None:
    app.extensions[EXTENSION_KEY] = runtime


def runtime() -> Runtime:
    """The runtime of the app handling the current request."""
    try:
        found: Runtime = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "no feedbackguard runtime on this app: "
            "call feedbackguard.web.context.init_runtime(app, rt)"
        ) from None
    return found
