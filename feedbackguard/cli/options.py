"""Options shared by several commands."""

from __future__ import annotations

from typing import get_args

import click

from feedbackguard.settings import LogLevel

namespace_option = click.option("--namespace", default="default", show_default=True)

log_level_option = click.option(
    "--log-level",
    type=click.Choice(get_args(LogLevel), case_sensitive=False),
    default=None,
    help="What to log (JSON lines on stderr; settings: log_level, INFO by default).",
)
