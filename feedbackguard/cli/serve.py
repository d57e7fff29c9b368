"""`feedbackguard serve`: the review UI/API and the admin API in one web server.

Werkzeug's threaded server is enough for moderators and admins; behind a real
deployment run `feedbackguard.web.server:create_app()` under any WSGI server.
"""

from __future__ import annotations

import logging

import click

from feedbackguard.logs import configure
from feedbackguard.settings import Settings


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind (settings: serve_host).")
@click.option("--port", type=int, default=None, help="Port (settings: serve_port).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the review UI/API, the admin API (/v1), /metrics, /healthz and /readyz."""
    from werkzeug.serving import run_simple

    from feedbackguard.web.server import create_app

    settings = Settings()
    configure()
    # Our own JSON request log (hashed client IPs) replaces werkzeug's access log,
    # which prints raw IPs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_app()
    bind_host = host or settings.serve_host
    bind_port = settings.serve_port if port is None else port
    click.echo(
        f"feedbackguard serving on http://{bind_host}:{bind_port} "
        f"(review {settings.review_prefix}, admin API {settings.admin_prefix}/v1)"
    )
    run_simple(bind_host, bind_port, app, threaded=True, use_reloader=False)
