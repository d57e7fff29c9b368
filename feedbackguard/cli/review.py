"""`feedbackguard review`: the moderators' queue from the terminal."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from typing import get_args

import click
import redis

from feedbackguard.cli.home import existing_settings
from feedbackguard.cli.options import namespace_option
from feedbackguard.decisions import Status
from feedbackguard.pipeline import ledger, namespaces, runtime
from feedbackguard.review import moderation, queue


@click.group("review")
def review_group() -> None:
    """Items the checks were unsure of: list, approve (to the retraining store), reject."""


@review_group.command("list")
@click.option(
    "--namespace",
    default=None,
    help="List this namespace's items (without it: every namespace's counts).",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.option("--reason", default=None, help="Only items with this reason code.")
@click.option("--account", default=None, help="Only this account's items.")
@click.option("--cluster", default=None, help="Only items of this cluster's accounts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(
    namespace: str | None,
    limit: int,
    offset: int,
    reason: str | None,
    account: str | None,
    cluster: str | None,
    as_json: bool,
) -> None:
    """Items waiting for a moderator, oldest first; without --namespace, how many
    wait in each namespace."""
    existing_settings(redis=True, store=True)
    rt = runtime.current()
    if namespace is None:
        if reason or account or cluster:
            raise click.UsageError("--reason, --account and --cluster need --namespace")
        _list_namespaces(rt.redis, as_json)
        return
    if reason or account or cluster:
        queue.ensure_indexed(rt.redis, namespace, rt.settings.review_sync_s)
        filters = queue.Filters(reason=reason, account=account, cluster=cluster)
        ids = queue.page(rt.redis, namespace, filters, limit=offset + limit).ids[offset:]
        records = ledger.load(rt.redis, namespace, ids)
        items = [(rec.event, rec.decision) for rec in records if rec is not None]
    else:
        items = moderation.waiting(rt.pipeline, namespace, limit, offset)
    for event, decision in items:
        if as_json:
            line = {
                "event": event.model_dump(mode="json", exclude_none=True),
                "risk": decision.risk,
                "reasons": [asdict(r) for r in decision.reasons],
            }
            click.echo(json.dumps(line))
            continue
        codes = ", ".join(r.code for r in decision.reasons)
        value = repr(event.value)[:40]
        click.echo(
            f"{event.event_id}  {event.account_id[:24]:<24} {event.item_id[:24]:<24} "
            f"{value:<16} risk {decision.risk:.2f}  {codes}"
        )
    if not as_json:
        click.echo(f"{len(items)} item(s) shown", err=True)


def _list_namespaces(r: redis.Redis[bytes], as_json: bool) -> None:
    """Every namespace's review backlog and events by status."""
    found = [namespaces.info(r, name) for name in namespaces.known(r)]
    statuses = get_args(Status)
    if as_json:
        for info in found:
            counts = {s: info.stats.get(s, 0) for s in statuses}
            click.echo(json.dumps({"namespace": info.namespace, "statuses": counts}))
        return
    width = max([len("namespace"), *(len(info.namespace) for info in found)])
    click.echo(f"{'namespace':<{width}}" + "".join(f" {s:>11}" for s in statuses))
    for info in found:
        row = "".join(f" {info.stats.get(s, 0):>11,}" for s in statuses)
        click.echo(f"{info.namespace:<{width}}{row}")
    click.echo(
        f"{len(found)} namespace(s); `review list --namespace NS` lists one's items", err=True
    )


def _decide(
    namespace: str, event_ids: tuple[str, ...], approve: bool, note: str, actor: str
) -> None:
    existing_settings(redis=True, store=True)
    result = moderation.moderate(
        runtime.current().pipeline, namespace, event_ids, approve=approve, actor=actor, note=note
    )
    done = result.approved if approve else result.rejected
    click.echo(f"{'approved' if approve else 'rejected'} {len(done)}")
    for event_id in result.not_in_review:
        click.echo(f"not in review (already decided, expired or unknown): {event_id}", err=True)
    for event_id in result.claimed_by_other:
        click.echo(f"claimed by another moderator: {event_id}", err=True)
    if result.not_in_review or result.claimed_by_other:
        raise SystemExit(1)


def _decision_command(name: str, approve: bool, help_text: str) -> None:
    @review_group.command(name=name, help=help_text)
    @click.argument("event_ids", nargs=-1, required=True)
    @namespace_option
    @click.option("--note", default="", help="Why (kept in the audit log).")
    @click.option("--actor", default=getpass.getuser, show_default="$USER")
    def command(event_ids: tuple[str, ...], namespace: str, note: str, actor: str) -> None:
        _decide(namespace, event_ids, approve, note, actor)


_decision_command("approve", True, "Approve EVENT_IDS: they go to the retraining store.")
_decision_command("reject", False, "Reject EVENT_IDS: they never reach the retraining store.")
