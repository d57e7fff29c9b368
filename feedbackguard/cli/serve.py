"""`feedbackguard serve`: the review UI/API and the admin API in one web server.

It serves with waitress, a production WSGI server in pure Python (Linux, macOS and
Windows): one process, a pool of threads. Werkzeug's development server is there
for `--dev` only. To run several processes, start several servers behind a load
balancer, or run `feedbackguard.web.server:create_app()` under another WSGI server.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from feedbackguard.cli.options import log_level_option
from feedbackguard.logs import configure
from feedbackguard.settings import Settings


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind (settings: serve_host).")
@click.option(
    "--port", type=int, default=None, help="Port; 0 picks a free one (settings: serve_port)."
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Requests served at once (settings: serve_threads).",
)
@click.option(
    "--timeout",
    type=click.IntRange(1),
    default=None,
    help="Seconds before an idle or stalled connection is closed (settings: serve_timeout_s).",
)
@click.option("--dev", is_flag=True, help="Werkzeug's development server instead of waitress.")
@log_level_option
def serve(
    host: str | None,
    port: int | None,
    threads: int | None,
    timeout: int | None,
    dev: bool,
    log_level: str | None,
) -> None:
    """Serve the review UI/API, the admin API (/api/v1: settings admin_prefix + /v1),
    /metrics, /healthz and /readyz, with waitress (production) or --dev."""
    from feedbackguard.web.server import create_app

    settings = Settings()
    configure(log_level or settings.log_level)
    app = create_app()
    bind_host = host or settings.serve_host
    bind_port = settings.serve_port if port is None else port
    if dev:
        _serve_dev(app, settings, bind_host, bind_port)
        return
    from waitress import create_server

    server = create_server(
        app,
        host=bind_host,
        port=bind_port,
        threads=threads or settings.serve_threads,
        channel_timeout=timeout or settings.serve_timeout_s,
        # X-Forwarded-For reaches the app, which trusts `trusted_proxies` hops of it
        # (feedbackguard/clientaddr.py); waitress would drop it, and every client
        # behind a proxy would share the proxy's address (and its auth-failure limit).
        clear_untrusted_proxy_headers=False,
    )
    _announce(settings, f"http://{bind_host}:{server.effective_port}", "waitress")
    server.run()


def _serve_dev(app: Any, settings: Settings, host: str, port: int) -> None:
    from werkzeug.serving import make_server

    # Our own JSON request log (hashed client IPs) replaces werkzeug's access log,
    # which prints raw IPs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    _announce(settings, f"http://{host}:{server.server_port}", "development server")
    server.serve_forever()


def _announce(settings: Settings, base: str, server: str) -> None:
    admin = settings.admin_prefix.rstrip("/")
    click.echo(
        f"feedbackguard serving on {base} with {server} "
        f"(review UI {settings.review_prefix}, admin API {admin}/v1)"
    )
