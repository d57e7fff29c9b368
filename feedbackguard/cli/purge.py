"""`feedbackguard purge`: take an account's or a cluster's items out of the next
training run (a new dataset version, audited), and put them back."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from feedbackguard import accounts, audit
from feedbackguard.connection import connect
from feedbackguard.settings import Settings
from feedbackguard.store import Store

note_option = click.option("--note", default="", help="Why (kept in the audit log).")
actor_option = click.option("--actor", default=getpass.getuser, show_default="$USER")


@click.group("purge")
def purge_group() -> None:
    """Quarantine stored items of accounts or clusters; restore them."""


def _apply(action: str, account_ids: Sequence[str], note: str, actor: str, what: str) -> None:
    settings = Settings()
    reason = f"{action} of {what}" + (f": {note}" if note else "")
    with Store.from_settings(settings) as store:
        apply = store.quarantine if action == "purge" else store.restore
        version = apply(account_ids=list(account_ids), reason=reason, actor=actor)
    r = connect(settings)
    audit.record(
        r,
        actor,
        f"store.{action}",
        accounts=list(account_ids),
        what=what,
        note=note,
        version=version.version,
        changed=version.changed,
    )
    r.close()
    click.echo(
        f"dataset version {version.version}: {version.changed} item(s) "
        f"{'quarantined' if action == 'purge' else 'restored'}, {version.live} live"
    )


@purge_group.command("account")
@click.argument("account_ids", nargs=-1, required=True)
@note_option
@actor_option
def purge_account(account_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Quarantine every stored item of ACCOUNT_IDS."""
    _apply("purge", account_ids, note, actor, f"accounts {', '.join(account_ids)}")


@purge_group.command("cluster")
@click.argument("cluster_id")
@click.option("--namespace", default="default", show_default=True)
@note_option
@actor_option
def purge_cluster(cluster_id: str, namespace: str, note: str, actor: str) -> None:
    """Quarantine every stored item of the members of CLUSTER_ID (last graph analysis)."""
    r = connect(Settings())
    found = accounts.cluster(r, namespace, cluster_id)
    r.close()
    if found is None:
        raise click.ClickException(
            f"no cluster {cluster_id!r} in {namespace} (not in the last analysis)"
        )
    _apply("purge", found["members"], note, actor, f"cluster {cluster_id}")


@purge_group.command("restore")
@click.argument("account_ids", nargs=-1, required=True)
@note_option
@actor_option
def restore(account_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Bring the quarantined items of ACCOUNT_IDS back into the training data."""
    _apply("restore", account_ids, note, actor, f"accounts {', '.join(account_ids)}")


# --- time ranges (helper "admin"; shares feedbackguard.admin.purge with the /v1 API) ---


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
    from feedbackguard.admin.purge import purge_range as run

    start, end = start.replace(tzinfo=start.tzinfo or UTC), end.replace(tzinfo=end.tzinfo or UTC)
    if start >= end:
        raise click.ClickException("--start must be before --end")
    settings = Settings()
    r = connect(settings)
    with Store.from_settings(settings) as store:
        version = run(r, store, start, end, actor, namespace, note)
    r.close()
    click.echo(
        f"dataset version {version.version}: {version.changed} item(s) quarantined, "
        f"{version.live} live"
    )
