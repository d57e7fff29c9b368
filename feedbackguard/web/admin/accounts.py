"""Admin endpoints for accounts: what is known of one (risk, reasons, clusters,
reputation, recent events) and the trust and block actions on it."""

from __future__ import annotations

from typing import Any

import pydantic

from feedbackguard import accounts
from feedbackguard.checks.graph import load_window
from feedbackguard.pipeline.ledger import clock
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import Registry
from feedbackguard.web.admin.context import actor, policies
from feedbackguard.web.context import runtime

api = Registry()
RECENT_EVENTS = 20


class NamespaceQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    namespace: str = pydantic.Field("default", pattern=m.NAME_PATTERN)


@api.endpoint(
    "GET", "/v1/accounts/{account_id}", role="viewer", out=m.AccountOut, query=NamespaceQuery
)
def show_account(account_id: str, query: NamespaceQuery) -> m.AccountOut:
    """Risk, reasons, clusters, reputation and recent events of an account."""
    r = runtime().redis
    ns = query.namespace
    policy = policies().current().policy
    found = accounts.account_risk(r, ns, account_id) or {}
    rows = load_window(r, ns, clock(r, ns) - policy.graph.window_s, policy.graph)
    mine = rows.newest_first(account=account_id)
    rel = accounts.reliability(r, ns, [account_id], policy.consistency.reputation)
    clusters = [accounts.cluster(r, ns, cid) for cid in found.get("clusters", [])]
    return m.AccountOut(
        account_id=account_id,
        namespace=ns,
        state=accounts.state(r, account_id),
        risk=float(found.get("risk", 0.0)),
        reasons=[m.ReasonOut(code=c, detail=d, score=s) for c, d, s in found.get("reasons", [])],
        clusters=[c for c in clusters if c is not None],
        reputation=float(rel[0]),
        events_in_window=len(mine),
        recent_events=[
            m.RecentEvent(
                event_id=row.event_id, item_id=row.item, value=row.value_text, time=row.time
            )
            for row in mine[:RECENT_EVENTS]
        ],
    )


def _account_action(name: str, action: Any, doc: str) -> None:
    def view(account_id: str, body: m.AccountAction) -> m.AccountStateOut:
        r = runtime().redis
        action(r, account_id, actor=actor(), note=body.note)
        return m.AccountStateOut(account_id=account_id, state=accounts.state(r, account_id))

    view.__name__ = f"{name}_account"
    view.__doc__ = doc
    api.endpoint(
        "POST",
        f"/v1/accounts/{{account_id}}/{name}",
        role="admin",
        out=m.AccountStateOut,
        body=m.AccountAction,
    )(view)


_account_action("trust", accounts.trust, "Vouch for an account (a trust seed).")
_account_action("untrust", accounts.untrust, "Withdraw trust from an account.")
_account_action("block", accounts.block, "Reject every further event of an account.")
_account_action("unblock", accounts.unblock, "Accept an account's feedback again.")
