"""Options shared by several commands."""

from __future__ import annotations

import click

namespace_option = click.option("--namespace", default="default", show_default=True)
