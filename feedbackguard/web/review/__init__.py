"""The moderators' review: a web UI (server-rendered Jinja, a little plain JS) and a
JSON API over the review queue, as one Flask blueprint.

Mount it in the product's app or let `feedbackguard serve` do it::

    app.register_blueprint(create_review_blueprint(), url_prefix="/review")

The app needs a `secret_key` (sessions, CSRF tokens) and a runtime
(`feedbackguard.web.context.init_runtime`). Every answer carries a strict
Content-Security-Policy; templates autoescape everything they show.
"""

from __future__ import annotations

from flask import Blueprint

from feedbackguard.web.review import api, case_api, case_ui, routing, security, ui


def create_review_blueprint() -> Blueprint:
    """The review blueprint: the queue of cases, case and item pages, and the
    moderation JSON API."""
    bp = Blueprint(
        "review",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.record_once(routing.install)  # before the routes that use the converter
    bp.after_request(security.secure_headers)
    api.register(bp)
    case_api.register(bp)
    ui.register(bp)
    case_ui.register(bp)
    return bp
