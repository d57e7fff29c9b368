"""`feedbackguard demo`: the whole product against simulated attacks, on the embedded default."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from feedbackguard.demo import default_settings, run


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the example desk, Redis and the worker up after the report (Ctrl-C stops).",
)
def demo(as_json: bool, keep_running: bool) -> None:
    """Start a private Redis, the example support desk and a worker; send honest
    corrections and three attacks (a Sybil swarm, a flood, slow sleepers) over HTTP;
    print what was admitted, rejected and sent to review, and what retraining on the
    admitted data does to the desk's model. On a terminal the review UI stays up after
    the report until Enter.

    Uses <FEEDBACKGUARD_HOME>/demo and never a configured Redis or store."""

    def echo(line: str) -> None:
        click.echo(line, err=as_json)

    # A SIGTERM (a process manager, `timeout`) stops the demo like Ctrl-C does: its
    # worker and private Redis are shut down on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def until_enter(report: dict[str, Any]) -> None:
        click.prompt("press Enter to stop the demo", default="", show_default=False)

    # On a terminal, the review UI stays up after the report until Enter.
    at_terminal = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    try:
        report = run(
            default_settings(),
            echo,
            keep_running=keep_running,
            wait=until_enter if at_terminal else None,
        )
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report))
