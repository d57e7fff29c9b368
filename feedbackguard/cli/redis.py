"""`feedbackguard redis start|stop|status`: the embedded Redis under FEEDBACKGUARD_HOME.

The embedded server outlives every command by design (the next command finds the
same state), so a command run from the wrong directory leaves a server behind in a
home of its own: `status` lists every one running, `stop --all` stops them.
"""

from __future__ import annotations

import click

from feedbackguard import embedded
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.settings import Settings


@click.group("redis")
def redis_group() -> None:
    """The private Redis used when FEEDBACKGUARD_REDIS_URL is not set."""


@redis_group.command()
def start() -> None:
    """Start this home's (if it is not running) and print its URL."""
    click.echo(EmbeddedRedis(Settings().home).start())


@redis_group.command()
@click.option("--all", "every", is_flag=True, help="Stop every embedded Redis, whatever its home.")
def stop(every: bool) -> None:
    """Stop this home's; its data stays on disk for the next start."""
    servers = embedded.running() if every else [EmbeddedRedis(Settings().home)]
    for server in servers:
        if server.is_running():
            server.stop()
            click.echo(f"stopped the embedded Redis of {server.home}")


@redis_group.command()
def status() -> None:
    """Say whether this home's runs, and list every embedded Redis running."""
    settings = Settings()
    here = EmbeddedRedis(settings.home)
    state = "running" if here.is_running() else "stopped"
    click.echo(f"this home ({here.home}): {state}, {here.url}")
    if settings.redis_url:
        click.echo("(not used: FEEDBACKGUARD_REDIS_URL is set)")
    servers = embedded.running()
    click.echo(f"embedded Redis servers running on this machine: {len(servers)}")
    for server in servers:
        mark = "  <- this home" if server.home == here.home else ""
        click.echo(f"  {server.home}  (pid {server.pid()}){mark}")
    if servers:
        click.echo(
            "stop one with `FEEDBACKGUARD_HOME=DIR feedbackguard redis stop`, "
            "all with `feedbackguard redis stop --all`"
        )
