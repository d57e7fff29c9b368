"""`feedbackguard keys`: API keys for the admin and review APIs (shown once)."""

from __future__ import annotations

import getpass

import click

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.settings import Settings
from feedbackguard.web import auth

actor_option = click.option("--actor", default=getpass.getuser, show_default="$USER")


@click.group("keys")
def keys_group() -> None:
    """API keys: add (secret printed once), revoke, list."""


@keys_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(auth.ROLES), required=True)
@actor_option
def add(name: str, role: str, actor: str) -> None:
    """A new key for NAME; prints KEY_ID and the secret (never shown again)."""
    try:
        key_id, secret = auth.add_key(connect(Settings()), name, role, actor=f"cli:{actor}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key_id {key_id}")
    click.echo(f"secret {secret}")
    click.echo("Store the secret now: only its hash is kept.", err=True)


@keys_group.command("revoke")
@click.argument("key_id")
@actor_option
def revoke(key_id: str, actor: str) -> None:
    """Revoke KEY_ID."""
    if not auth.revoke_key(connect(existing_settings(redis=True)), key_id, actor=f"cli:{actor}"):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"key {key_id} revoked")


@keys_group.command("list")
def list_command() -> None:
    """Every key's id, name, role and creation time."""
    for k in auth.list_keys(connect(existing_settings(redis=True))):
        click.echo(f"{k['key_id']}  {k['role']:<9} {k['name']:<20} {k['created_at']}")
