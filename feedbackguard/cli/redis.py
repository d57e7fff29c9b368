"""`feedbackguard redis start|stop|status`: the embedded Redis under FEEDBACKGUARD_HOME."""

from __future__ import annotations

import click

from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.settings import Settings


@click.group("redis")
def redis_group() -> None:
    """The private Redis used when FEEDBACKGUARD_REDIS_URL is not set."""


@redis_group.command()
def start() -> None:
    """Start it (if it is not running) and print its URL."""
    click.echo(EmbeddedRedis(Settings().home).start())


@redis_group.command()
def stop() -> None:
    """Stop it; its data stays on disk for the next start."""
    EmbeddedRedis(Settings().home).stop()


@redis_group.command()
def status() -> None:
    """Say whether it runs, and where."""
    server = EmbeddedRedis(Settings().home)
    state = "running" if server.is_running() else "stopped"
    click.echo(f"{state}: {server.url} (data in {server.dir})")
