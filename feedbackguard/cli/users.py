"""`feedbackguard users`: people who sign in to the review UI (password, role)."""

from __future__ import annotations

import getpass
import sys

import click

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.settings import Settings
from feedbackguard.web import auth

actor_option = click.option("--actor", default=getpass.getuser, show_default="$USER")


@click.group("users")
def users_group() -> None:
    """Review UI users: add (or reset a password), remove."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(auth.ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@actor_option
def add(name: str, role: str, password_stdin: bool, actor: str) -> None:
    """Create NAME with ROLE (prompting for the password), or replace it; replacing
    ends every session NAME has open."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        auth.add_user(connect(Settings()), name, role, password, actor=f"cli:{actor}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} ({role}) saved; any open sessions of {name} are ended")


@users_group.command("remove")
@click.argument("name")
@actor_option
def remove(name: str, actor: str) -> None:
    """Remove NAME."""
    if not auth.remove_user(connect(existing_settings(redis=True)), name, actor=f"cli:{actor}"):
        raise click.ClickException(f"no user {name}")
    click.echo(f"user {name} removed")
