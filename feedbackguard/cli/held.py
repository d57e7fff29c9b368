"""`feedbackguard held list|requeue`: spooled copies of events too late to deduplicate.

Capture spools an event whose write to Redis failed after it was sent (a timeout): it
may have landed anyway. If such a copy reaches a worker after the first copy's record
may have expired (the policy's `outcome_ttl_s` minus `clock_skew_s` after capture),
the worker cannot tell whether the event was decided already, so it holds the copy
instead of deciding it twice. An operator who knows the events are new (an outage
longer than the outcome TTL, say) requeues them; they are then decided like any event
(and still deduplicated against every record that exists).
"""

from __future__ import annotations

import click
import orjson

from feedbackguard import keys
from feedbackguard.cli.home import existing_settings
from feedbackguard.cli.options import namespace_option
from feedbackguard.connection import connect
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.engine import requeue_held


@click.group("held")
def held_group() -> None:
    """Spooled copies of events too late to deduplicate."""


@held_group.command("list")
@namespace_option
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
def list_held(namespace: str, limit: int) -> None:
    """Say how many events are held and show the oldest (one JSON line each)."""
    r = connect(existing_settings(redis=True))
    key = keys.held(namespace)
    click.echo(f"{r.llen(key)} event(s) held in namespace {namespace!r}")
    for raw in r.lrange(key, 0, limit - 1) if limit else []:
        event = FeedbackEvent.from_json(raw)
        click.echo(orjson.dumps(event.model_dump(mode="json", exclude_none=True)).decode())


@held_group.command()
@namespace_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def requeue(namespace: str, yes: bool) -> None:
    """Send every held event back to the inbox, to be decided as new."""
    r = connect(existing_settings(redis=True))
    key = keys.held(namespace)
    waiting = r.llen(key)
    if not waiting:
        click.echo(f"no event held in namespace {namespace!r}")
        return
    if not yes:
        click.confirm(
            f"requeue {waiting} held event(s) of {namespace!r}? Each is decided as new "
            "unless a record of it still exists",
            abort=True,
        )
    click.echo(f"requeued {requeue_held(r, namespace)} event(s)")
