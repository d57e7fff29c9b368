"""`feedbackguard policy`: the policy in force, its history, changes and rollbacks.

Every change is a new version (author, time, note) in the audit log; running workers
pick it up within their `policy_cache_s`.
"""

from __future__ import annotations

import getpass
import json
import tomllib
from pathlib import Path
from typing import Any

import click
import orjson
import pydantic

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.policy import MAX_POLICY_BYTES, Policy, PolicyTooLarge, check_size
from feedbackguard.policy.store import PolicyStore, UnknownPolicyVersion, UnnotedDisable
from feedbackguard.settings import Settings

actor_option = click.option("--actor", default=getpass.getuser, show_default="$USER")


@click.group("policy")
def policy_group() -> None:
    """The policy: limits, thresholds, windows and detector parameters."""


def _store(*, create: bool = False) -> PolicyStore:
    """The policy store; only `set` may create a home (and its embedded Redis)."""
    settings = Settings() if create else existing_settings(redis=True)
    return PolicyStore(connect(settings), cache_s=0)


@policy_group.command()
@click.option("--version", "number", type=int, help="A past version instead of the current one.")
def show(number: int | None) -> None:
    """Print the policy in force (or a past version) as JSON."""
    store = _store()
    found = store.current() if number is None else store.get(number)
    if found is None:
        raise click.ClickException(f"no policy version {number}")
    click.echo(found.model_dump_json(indent=2))


def _load(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_POLICY_BYTES:
        raise click.ClickException(
            f"{path}: {size} bytes; a policy is at most {MAX_POLICY_BYTES} bytes (MAX_POLICY_BYTES)"
        )
    text = path.read_text(encoding="utf-8")
    try:
        loaded: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    return loaded.get("policy", loaded) if path.suffix == ".json" else loaded


@policy_group.command("set")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default="", help="Why (kept with the version and in the audit log).")
@actor_option
def set_command(path: Path, note: str, actor: str) -> None:
    """Replace the policy with PATH (TOML like config/policy.toml, or JSON as printed by
    `policy show`); refused, naming each bad field, if it does not validate strictly
    (no "10" for a number, no "off" for false), and without a --note if it turns a
    defence off."""
    try:
        data = _load(path)
        check_size(data)
        policy = Policy.model_validate_json(orjson.dumps(data), strict=True)
    except PolicyTooLarge as exc:
        raise click.ClickException(str(exc)) from exc
    except pydantic.ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise click.ClickException("invalid policy:\n" + "\n".join(lines)) from exc
    store = _store(create=True)
    disabled = store.disables(policy)
    try:
        version = store.set(policy, author=actor, note=note, note_disables=True)
    except (UnnotedDisable, PolicyTooLarge) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"policy version {version.version} in force")
    if disabled:
        click.echo(f"warning: this version disables {', '.join(disabled)}", err=True)


@policy_group.command()
def history() -> None:
    """Every version, newest first: number, author, time, note."""
    for entry in _store().history():
        click.echo(
            f"{entry.version:>5}  {entry.created_at:%Y-%m-%d %H:%M:%S}  {entry.author:<16} "
            f"{entry.note}"
        )


@policy_group.command()
@click.argument("version", type=int)
@actor_option
def rollback(version: int, actor: str) -> None:
    """Put VERSION back in force (as a new version)."""
    try:
        entry = _store().rollback(version, author=actor)
    except UnknownPolicyVersion as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"policy version {entry.version} in force (rollback to {version})")
