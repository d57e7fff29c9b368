"""`feedbackguard accounts`: what is known about an account; trust and block."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Any

import click
import redis

from feedbackguard import accounts
from feedbackguard.checks.graph import load_window
from feedbackguard.cli.home import existing_settings
from feedbackguard.cli.options import namespace_option
from feedbackguard.connection import connect
from feedbackguard.pipeline.ledger import clock
from feedbackguard.policy.store import PolicyStore

RECENT_EVENTS = 20

actor_option = click.option(
    "--actor", default=getpass.getuser, show_default="$USER", help="Who is acting (audit log)."
)
note_option = click.option("--note", default="", help="Why (kept in the audit log).")


@click.group("accounts")
def accounts_group() -> None:
    """Accounts: what the graph analysis found, and admin trust / block."""


def _client() -> redis.Redis[bytes]:
    return connect(existing_settings(redis=True))


@accounts_group.command()
@click.argument("account_id")
@namespace_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(account_id: str, namespace: str, as_json: bool) -> None:
    """State, graph risk and reasons, clusters and recent events of ACCOUNT_ID."""
    r = _client()
    found = accounts.account_risk(r, namespace, account_id)
    policy = PolicyStore(r).current().policy.graph
    rows = load_window(r, namespace, clock(r, namespace) - policy.window_s, policy)
    mine = rows.newest_first(account=account_id)
    out: dict[str, Any] = {
        "account_id": account_id,
        "namespace": namespace,
        "state": accounts.state(r, account_id),
        "risk": found["risk"] if found else 0.0,
        "reasons": [
            {"code": c, "detail": d, "score": s} for c, d, s in (found or {}).get("reasons", [])
        ],
        "clusters": [
            accounts.cluster(r, namespace, cid) for cid in (found or {}).get("clusters", [])
        ],
        "events_in_window": len(mine),
        "recent_events": [
            {
                "event_id": row.event_id,
                "item_id": row.item,
                "value": row.value_text,
                "time": row.time,
                "ip": row.ip,
            }
            for row in mine[:RECENT_EVENTS]
        ],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{account_id} in {namespace}: state {out['state'] or 'none'}, risk {out['risk']}")
    for reason in out["reasons"]:
        click.echo(f"  {reason['code']} ({reason['score']}): {reason['detail']}")
    for cluster in out["clusters"]:
        if cluster:
            click.echo(
                f"  cluster {cluster['cluster_id']} {cluster['code']}: "
                f"{len(cluster['members'])} members, items {', '.join(cluster['items'][:5])}"
            )
    click.echo(f"  {len(mine)} events in the analysis window")


def _state_command(name: str, action: Callable[..., None], help_text: str) -> None:
    @accounts_group.command(name=name, help=help_text)
    @click.argument("account_id")
    @note_option
    @actor_option
    def command(account_id: str, note: str, actor: str) -> None:
        action(_client(), account_id, actor=actor, note=note)
        click.echo(f"{account_id}: {name} (by {actor})")


_state_command("trust", accounts.trust, "Vouch for ACCOUNT_ID: a trust seed, no graph reasons.")
_state_command("untrust", accounts.untrust, "Withdraw trust from ACCOUNT_ID.")
_state_command("block", accounts.block, "Reject every further event of ACCOUNT_ID.")
_state_command(
    "unblock", accounts.unblock, "Accept ACCOUNT_ID's feedback again (checked as usual)."
)
