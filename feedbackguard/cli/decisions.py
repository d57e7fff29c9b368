"""`feedbackguard decisions EVENT_ID`: what was decided about an event, and why."""

from __future__ import annotations

import click
import orjson

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.pipeline import ledger


@click.command()
@click.argument("event_id")
def decisions(event_id: str) -> None:
    """Print an event's decision trail (JSON), newest decision last.

    Rejected and review outcomes are kept for the policy's outcome_ttl_s; admitted
    items stay in the retraining store for good.
    """
    record = ledger.find(connect(existing_settings(redis=True)), event_id)
    if record is None:
        raise click.ClickException(f"no decision for event {event_id!r} (unknown, or expired)")
    out = {
        "event": record.event.model_dump(mode="json", exclude_none=True),
        "trail": [d.model_dump(mode="json") for d in record.trail],
    }
    click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
