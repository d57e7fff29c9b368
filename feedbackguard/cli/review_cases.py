"""`feedbackguard review cases / case / decide-case / undo-case / status`: review by
cases from the terminal (registered on the `review` group)."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict

import click

from feedbackguard.cli.home import existing_settings
from feedbackguard.cli.options import namespace_option
from feedbackguard.cli.review import review_group
from feedbackguard.pipeline import ledger, namespaces, runtime
from feedbackguard.review import backlog, cases, casework
from feedbackguard.review.cases import as_json as case_json


@review_group.command("cases")
@namespace_option
@click.option("--kind", type=click.Choice(["account", "item", "group"]), default=None)
@click.option("--reason", default=None, help="Only cases with events of this reason code.")
@click.option("--account", default=None, help="Only cases holding this account's events.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def cases_command(
    namespace: str,
    kind: str | None,
    reason: str | None,
    account: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Open cases, most expected harm first (risk x events while no event has a harm
    estimate)."""
    existing_settings(redis=True, store=True)
    r = runtime.current().redis
    cases.catch_up(r, namespace)
    filters = cases.Filters(
        kind=_kind(kind),
        reason=reason,
        account=account,
    )
    found = cases.page(r, namespace, filters, limit=limit)
    loaded = [c for c in cases.load(r, namespace, found.ids) if c is not None]
    for case in loaded:
        if as_json:
            click.echo(json.dumps(case_json(case)))
            continue
        value = case.expected_harm if found.order == "harm" else case.risk_sum
        click.echo(
            f"{case.case_id:>6}  {case.kind_name:<7} {case.label[:32]:<32} "
            f"{case.events:>6} events {case.accounts:>5} accounts  "
            f"{'harm' if found.order == 'harm' else 'risk x events'} {value:.2f}  "
            f"{case.top_code}"
        )
    if not as_json:
        order = "expected harm" if found.order == "harm" else "risk x events (no harm yet)"
        click.echo(f"{len(loaded)} case(s) shown, by {order}", err=True)


def _kind(name: str | None) -> cases.Kind | None:
    return {"account": "a", "item": "i", "group": "g"}.get(name or "")  # type: ignore[return-value]


@review_group.command("case")
@click.argument("case_id")
@namespace_option
@click.option("--json", "as_json", is_flag=True)
def case_command(case_id: str, namespace: str, as_json: bool) -> None:
    """One case: its counts and the events waiting in it."""
    existing_settings(redis=True, store=True)
    r = runtime.current().redis
    case = cases.get(r, namespace, case_id)
    if case is None:
        raise click.ClickException(f"no case {case_id} in {namespace}")
    ids = cases.members(r, namespace, case_id)
    if as_json:
        click.echo(json.dumps({**case_json(case), "event_ids": ids}))
        return
    click.echo(
        f"case {case.case_id} ({case.kind_name} {case.label}): {case.events} events from "
        f"{case.accounts} accounts, mean risk {case.risk:.2f}, harm {case.harm:.2f}, "
        f"version {case.version}"
    )
    click.echo(f"  why: {case.top_code}: {case.top_detail}")
    for record in ledger.load(r, namespace, ids):
        if record is not None:
            event = record.event
            click.echo(
                f"  {event.event_id}  {event.account_id[:24]:<24} {event.item_id[:24]:<24} "
                f"{repr(event.value)[:30]}"
            )


@review_group.command("decide-case")
@click.argument("case_id")
@click.argument("action", type=click.Choice(["approve", "reject", "split"]))
@namespace_option
@click.option(
    "--approve-account",
    "approve_accounts",
    multiple=True,
    help="split: approve this account's events (the others are rejected).",
)
@click.option(
    "--approve-event",
    "approve_ids",
    multiple=True,
    help="split: approve this event (the others are rejected).",
)
@click.option(
    "--seen-version",
    type=int,
    default=None,
    help="The case's version you looked at (`review case`); an approval is refused if "
    "events joined since.",
)
@click.option("--note", default="", help="Why (kept in the decisions and the audit log).")
@click.option("--actor", default=getpass.getuser, show_default="$USER")
def decide_case_command(
    case_id: str,
    action: str,
    namespace: str,
    approve_accounts: tuple[str, ...],
    approve_ids: tuple[str, ...],
    seen_version: int | None,
    note: str,
    actor: str,
) -> None:
    """Approve, reject or split a whole case in one action."""
    existing_settings(redis=True, store=True)
    rt = runtime.current()
    try:
        done = casework.decide(
            rt.pipeline,
            namespace,
            case_id,
            actor,
            casework.ACTIONS[action],
            keep_s=rt.settings.review_undo_s,
            approve_ids=approve_ids,
            approve_accounts=approve_accounts,
            seen_version=seen_version,
            note=note,
        )
    except casework.CaseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"case {case_id}: approved {len(done.approved)}, rejected {len(done.rejected)} "
        f"(action {done.action_id}; `review undo-case {done.action_id}` within "
        f"{rt.settings.review_undo_s:g} s)"
    )


@review_group.command("undo-case")
@click.argument("action_id")
@namespace_option
@click.option("--note", default="")
@click.option("--actor", default=getpass.getuser, show_default="$USER")
def undo_case_command(action_id: str, namespace: str, note: str, actor: str) -> None:
    """Undo your case action ACTION_ID as a whole: its events go back to review."""
    existing_settings(redis=True, store=True)
    rt = runtime.current()
    try:
        result = casework.undo(
            rt.pipeline, namespace, action_id, actor, window_s=rt.settings.review_undo_s, note=note
        )
    except casework.CaseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"case {result.case_id}: {len(result.undone)} back in review")
    if result.refused:
        click.echo(f"{len(result.refused)} decided again since, left as they are", err=True)


@review_group.command("status")
@click.option("--namespace", default=None, help="One namespace (default: every namespace).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def status_command(namespace: str | None, as_json: bool) -> None:
    """How far behind review is: open cases, waiting events, the oldest case's age,
    cases decided in the last day, the capacity and cases over budget."""
    existing_settings(redis=True, store=True)
    rt = runtime.current()
    review = rt.pipeline.policies.current().policy.review
    names = [namespace] if namespace else namespaces.known(rt.redis)
    for name in names:
        cases.catch_up(rt.redis, name)
        found = backlog.status(rt.redis, name, review.capacity(name))
        if as_json:
            click.echo(json.dumps(asdict(found)))
            continue
        capacity = f"{found.capacity_per_day:g}/day" if found.capacity_per_day else "no limit"
        click.echo(
            f"{name}: {found.open_cases} open cases ({found.waiting_events} events), "
            f"oldest {found.oldest_case_age_s / 3600:.1f} h, decided in the last day "
            f"{found.decided_last_day}, capacity {capacity}, over budget "
            f"{found.over_budget_cases}, ordered by "
            f"{'expected harm' if found.order == 'harm' else 'risk x events'}"
        )
