"""`feedbackguard policy`: the policy in force, its history, changes, dry runs and
rollbacks.

Every change is a new version (author, time, note) in the audit log; running workers
pick it up within their `policy_cache_s`. `dry-run` shows what a proposed change would
have done to recent events before it is put in force.
"""

from __future__ import annotations

import dataclasses
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
from feedbackguard.pipeline import dryrun
from feedbackguard.policy import MAX_POLICY_BYTES, Policy, PolicyTooLarge
from feedbackguard.policy.disables import diff
from feedbackguard.policy.merge import PatchError, SilentReset, proposed
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


def _proposed(store: PolicyStore, path: Path, merge: bool) -> Policy:
    """The policy PATH proposes: whole, or merged into the one in force (`--merge`);
    a ClickException naming each problem."""
    data = _load(path)
    current = store.current().policy
    try:
        return proposed(current, None if merge else data, data if merge else None)
    except (PolicyTooLarge, SilentReset, PatchError) as exc:
        raise click.ClickException(str(exc)) from exc
    except pydantic.ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise click.ClickException("invalid policy:\n" + "\n".join(lines)) from exc


merge_option = click.option(
    "--merge",
    is_flag=True,
    help="Merge PATH into the policy in force: what it leaves out keeps its value; rate "
    "limits are patched by scope and kinds (and window_s), feature triggers by name, "
    '{..., "remove": true} removes one.',
)


def _changes(before: Policy, after: Policy) -> list[str]:
    changed = diff(before.model_dump(mode="json"), after.model_dump(mode="json"))
    return [f"  {path}: {old!r} -> {new!r}" for path, (old, new) in changed.items()]


@policy_group.command("set")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@merge_option
@click.option("--note", default="", help="Why (kept with the version and in the audit log).")
@actor_option
def set_command(path: Path, merge: bool, note: str, actor: str) -> None:
    """Put PATH in force (TOML like config/policy.toml, or JSON as printed by `policy
    show`), validated strictly (no "10" for a number, no "off" for false).

    Without --merge PATH is the whole policy: what it leaves out takes its default,
    and it is refused, naming them, when that would reset a value in force. A change
    that removes a defence or a limit needs a --note; the changes and what they
    remove are printed."""
    store = _store(create=True)
    before = store.current().policy
    policy = _proposed(store, path, merge)
    disabled = store.disables(policy)
    try:
        version = store.set(policy, author=actor, note=note, note_disables=True)
    except (UnnotedDisable, PolicyTooLarge) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"policy version {version.version} in force")
    for line in _changes(before, policy) or ["  (no change)"]:
        click.echo(line)
    if disabled:
        click.echo(f"warning: this version disables {', '.join(disabled)}", err=True)
    probation = dryrun.probation_note(store.r, before, policy)
    if probation:
        click.echo(f"note: {probation}", err=True)


@policy_group.command("dry-run")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@merge_option
@click.option("--namespace", default="default", show_default=True)
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=dryrun.DEFAULT_HOURS,
    show_default=True,
    help="Event time replayed, back from the namespace's clock.",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    default=dryrun.DEFAULT_MAX_EVENTS,
    show_default=True,
    help="Replay at most the newest this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def dry_run_command(
    path: Path, merge: bool, namespace: str, hours: float, max_events: int, as_json: bool
) -> None:
    """What PATH would have done to the namespace's recent events: the last --hours
    replayed through the real pipeline under the policy in force and under PATH, on
    scratch namespaces (nothing live is written), compared event by event."""
    settings = existing_settings(redis=True)
    store = PolicyStore(connect(settings), cache_s=0)
    current = store.current()
    policy = _proposed(store, path, merge)
    report = dryrun.dry_run(
        store.r,
        namespace,
        current,
        policy,
        hours=hours,
        max_events=max_events,
        batch_size=settings.batch_size,
    )

    if as_json:
        click.echo(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(
        f"{report.events} events of {namespace} replayed ({report.seconds:.1f} s); "
        f"{report.changed} would change status"
    )
    for move in report.moves:
        reasons = ", ".join(f"{code} {n}" for code, n in move.reasons.most_common(5))
        people = ", ".join(f"{who} {n}" for who, n in move.populations.most_common())
        click.echo(f"  {move.old} -> {move.new}: {move.count}  [{reasons}]  ({people})")
        click.echo(f"    e.g. {' '.join(move.examples)}")
    click.echo(
        f"the policy in force, replayed, matches {report.live_agreed} of "
        f"{report.live_compared} live statuses ({report.moderated} moderated not compared)"
    )
    if report.disables:
        click.echo(f"warning: this change disables {', '.join(report.disables)}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


def report_json(report: dryrun.Report) -> dict[str, Any]:
    out = dataclasses.asdict(report)
    out["changed"] = report.changed
    return out


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
