"""The checks of an app's feedback endpoints that need its routes: a route-table entry
names an endpoint the app has, each `view:` source a URL variable of the endpoint's
rules, and which endpoints never supply the account's age.

A spec's own mistakes (unknown source prefix, unknown kind, missing field) are refused
when it is built (`sources.FeedbackSpec.build`); these checks run once the app's routes
are registered: at `FeedbackGuard.validate(app)`, or else at the app's first request
(Flask 3 has no start-up hook that runs after every route is registered).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import flask

from feedbackguard.capture.sources import FeedbackSpec

SPEC_ATTRIBUTE = "_feedbackguard_spec"
"""Set by `FeedbackGuard.feedback` on the view it wraps."""


def decorated_spec(view: Any) -> FeedbackSpec | None:
    """The spec of a view wrapped by `FeedbackGuard.feedback` (also under decorators
    that keep `__wrapped__` or copy the wrapper's attributes)."""
    while view is not None:
        spec = getattr(view, SPEC_ATTRIBUTE, None)
        if isinstance(spec, FeedbackSpec):
            return spec
        view = getattr(view, "__wrapped__", None)
    return None


def feedback_endpoints(
    app: flask.Flask, routes: Mapping[str, FeedbackSpec]
) -> dict[str, tuple[str, FeedbackSpec]]:
    """endpoint -> (how it was marked, its spec); a decorated view wins over its
    route-table entry, as at request time."""
    found = {
        endpoint: (f"FEEDBACKGUARD_ROUTES[{endpoint!r}]", spec)
        for endpoint, spec in routes.items()
        if endpoint in app.view_functions
    }
    for endpoint, view in app.view_functions.items():
        spec = decorated_spec(view)
        if spec is not None:
            found[endpoint] = (f"@feedback on endpoint {endpoint!r}", spec)
    return found


def problems(app: flask.Flask, routes: Mapping[str, FeedbackSpec]) -> list[str]:
    """What is wrong with the app's feedback endpoints, one line each."""
    out = []
    known = sorted(app.view_functions)
    for endpoint in routes:
        if endpoint not in app.view_functions:
            close = difflib.get_close_matches(endpoint, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(
                f"FEEDBACKGUARD_ROUTES[{endpoint!r}]: the app has no endpoint {endpoint!r}"
                f"{hint}; route-table keys are endpoint names (the view function's name "
                "unless the route sets endpoint=...)"
            )
    for endpoint, (where, spec) in feedback_endpoints(app, routes).items():
        for rule in app.url_map.iter_rules(endpoint):
            for name in sorted(spec.view_args - rule.arguments):
                variables = ", ".join(sorted(rule.arguments)) or "none"
                out.append(
                    f"{where}: view:{name}: the rule {rule.rule!r} has no URL variable "
                    f"{name!r} (its variables: {variables})"
                )
    return out


def without_account_age(app: flask.Flask, routes: Mapping[str, FeedbackSpec]) -> list[str]:
    """The feedback endpoints whose spec never supplies `account_created_at`."""
    return sorted(
        endpoint
        for endpoint, (_, spec) in feedback_endpoints(app, routes).items()
        if not spec.supplies_account_age
    )
