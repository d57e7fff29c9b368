"""`feedbackguard purge`: take an account's or a cluster's items out of the next
training run (a new dataset version, audited), and put them back."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime

import click
import redis

from feedbackguard.cli.home import existing_settings
from feedbackguard.cli.options import namespace_option
from feedbackguard.connection import connect
from feedbackguard.store import Store, Version
from feedbackguard.store import purge as purging

note_option = click.option("--note", default="", help="Why (kept in the audit log).")
actor_option = click.option("--actor", default=getpass.getuser, show_default="$USER")


@click.group("purge")
def purge_group() -> None:
    """Quarantine stored items of accounts or clusters; restore them."""


def _run(action: Callable[[redis.Redis[bytes], Store], Version], verb: str) -> None:
    """Run a purge or restore (`feedbackguard.store.purge`, shared with the admin API)."""
    settings = existing_settings(redis=True, store=True)
    r = connect(settings)
    try:
        with Store.from_settings(settings, r) as store:
            version = action(r, store)
    except purging.NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        r.close()
    click.echo(
        f"dataset version {version.version}: {version.changed} item(s) {verb}, {version.live} live"
    )


@purge_group.command("account")
@click.argument("account_ids", nargs=-1, required=True)
@note_option
@actor_option
def purge_account(account_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Quarantine every stored item of ACCOUNT_IDS."""
    _run(lambda r, s: purging.purge_accounts(r, s, account_ids, actor, note), "quarantined")


@purge_group.command("cluster")
@click.argument("cluster_id")
@namespace_option
@note_option
@actor_option
def purge_cluster(cluster_id: str, namespace: str, note: str, actor: str) -> None:
    """Quarantine every stored item of the members of CLUSTER_ID (last graph analysis)."""
    _run(
        lambda r, s: purging.purge_cluster(r, s, namespace, cluster_id, actor, note),
        "quarantined",
    )


@purge_group.command("restore")
@click.argument("account_ids", nargs=-1, required=True)
@note_option
@actor_option
def restore(account_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Bring the quarantined items of ACCOUNT_IDS back into the training data."""
    _run(lambda r, s: purging.restore(r, s, actor, account_ids=account_ids, note=note), "restored")


@purge_group.command("range")
@click.option("--start", type=click.DateTime(), required=True, help="First event time (UTC).")
@click.option("--end", type=click.DateTime(), required=True, help="Event time excluded (UTC).")
@click.option("--namespace", default=None, help="Only this namespace (default: all).")
@note_option
@actor_option
def purge_range(
    start: datetime, end: datetime, namespace: str | None, note: str, actor: str
) -> None:
    """Quarantine every stored item received in [START, END)."""
    start, end = start.replace(tzinfo=start.tzinfo or UTC), end.replace(tzinfo=end.tzinfo or UTC)
    if start >= end:
        raise click.ClickException("--start must be before --end")
    _run(lambda r, s: purging.purge_range(r, s, start, end, actor, namespace, note), "quarantined")
