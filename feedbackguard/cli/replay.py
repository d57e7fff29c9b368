"""`feedbackguard replay FILE.jsonl`: recorded events through the real pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click

from feedbackguard.pipeline.replay import ReplayFileError, replay
from feedbackguard.settings import Settings


@click.command("replay")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--decisions-out",
    type=click.File("wb"),
    help="Write one JSON line per event: {event_id, status, risk, reasons}.",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--no-workers",
    is_flag=True,
    help="Use workers already running elsewhere (started with FEEDBACKGUARD_CLOCK=events).",
)
def replay_command(
    path: Path, decisions_out: IO[bytes] | None, workers: int, no_workers: bool
) -> None:
    """Feed a recorded stream (one event per line, docs/architecture.md's event
    contract, with received_at) through the real pipeline on event time, and wait until
    every event has a final status, probation included."""
    last: dict[str, int] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if last.get(phase) != done:
            last[phase] = done
            click.echo(f"\r{phase}: {done}/{total}", nl=done >= total, err=True)

    try:
        report = replay(
            path,
            Settings(),
            workers=workers,
            spawn_workers=not no_workers,
            decisions_out=decisions_out,
            progress=progress,
        )
    except ReplayFileError as exc:
        raise click.ClickException(str(exc)) from exc
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items()))
    click.echo(f"{report.events} events in {report.seconds:.1f}s: {counts}", file=sys.stderr)
