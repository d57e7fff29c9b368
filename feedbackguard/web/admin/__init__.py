"""The admin API (/v1): policy, accounts, allow/deny lists, purge, namespaces, audit,
API keys. Every write needs the `admin` role, reads `viewer` or higher (see
`feedbackguard.web.auth`). Bodies and answers are pydantic models (`admin.models`); the
OpenAPI 3.1 document at /v1/openapi.json is generated from them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pydantic
from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from feedbackguard import __version__, accounts, audit, reputation
from feedbackguard.checks.graph import load_window
from feedbackguard.pipeline.ledger import clock
from feedbackguard.pipeline.namespaces import info, known
from feedbackguard.policy import lists, lockdown
from feedbackguard.policy.store import PolicyStore, PolicyVersion, UnknownPolicyVersion
from feedbackguard.store import Version
from feedbackguard.store import purge as purging
from feedbackguard.web import auth
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin import policyops
from feedbackguard.web.admin.api import ApiError, Registry, error_response, invalid, openapi
from feedbackguard.web.context import runtime

api = Registry()
RECENT_EVENTS = 20


def _actor() -> str:
    principal: auth.Principal = g.principal
    return f"{principal.via}:{principal.name}"


def _policies() -> PolicyStore:
    # A fresh, uncached store: admins must read what they just wrote.
    return PolicyStore(runtime().redis, cache_s=0)


def _version_out(v: PolicyVersion) -> m.PolicyVersionOut:
    return m.PolicyVersionOut(
        version=v.version,
        author=v.author,
        created_at=v.created_at,
        note=v.note,
        policy=policyops.as_json(v.policy),
    )


def _validated(whole: dict[str, Any] | None, patch: dict[str, Any] | None) -> Any:
    try:
        return policyops.proposed(_policies(), whole, patch)
    except pydantic.ValidationError as exc:
        raise invalid(exc, prefix="policy") from exc


# --- policy ----------------------------------------------------------------------------


@api.endpoint("GET", "/v1/policy", role="viewer", out=m.PolicyVersionOut)
def get_policy() -> m.PolicyVersionOut:
    """The policy in force."""
    return _version_out(_policies().current())


@api.endpoint("PUT", "/v1/policy", role="admin", out=m.PolicyVersionOut, body=m.PolicyReplace)
def replace_policy(body: m.PolicyReplace) -> m.PolicyVersionOut:
    """Replace the whole policy (a new version)."""
    policy = _validated(body.policy, None)
    return _version_out(_policies().set(policy, author=_actor(), note=body.note))


@api.endpoint("PATCH", "/v1/policy", role="admin", out=m.PolicyVersionOut, body=m.PolicyPatch)
def patch_policy(body: m.PolicyPatch) -> m.PolicyVersionOut:
    """Deep-merge a patch into the policy (a new version)."""
    policy = _validated(None, body.patch)
    return _version_out(_policies().set(policy, author=_actor(), note=body.note))


class HistoryQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    limit: int = pydantic.Field(50, ge=1, le=1000)


@api.endpoint(
    "GET", "/v1/policy/history", role="viewer", out=m.PolicyHistoryOut, query=HistoryQuery
)
def policy_history(query: HistoryQuery) -> m.PolicyHistoryOut:
    """Policy versions, newest first, each with its diff to the previous one."""
    versions = _policies().history()[: query.limit + 1]
    out = []
    for i, v in enumerate(versions[: query.limit]):
        before = versions[i + 1] if i + 1 < len(versions) else None
        out.append(
            m.PolicyHistoryEntry(
                version=v.version,
                author=v.author,
                created_at=v.created_at,
                note=v.note,
                diff=policyops.diff(
                    policyops.as_json(before.policy) if before else None,
                    policyops.as_json(v.policy),
                ),
            )
        )
    return m.PolicyHistoryOut(versions=out)


@api.endpoint(
    "POST",
    "/v1/policy/rollback",
    role="admin",
    out=m.PolicyVersionOut,
    body=m.PolicyRollback,
    errors=(404,),
)
def rollback_policy(body: m.PolicyRollback) -> m.PolicyVersionOut:
    """Put a past version back in force (as a new version)."""
    try:
        return _version_out(_policies().rollback(body.version, author=_actor()))
    except UnknownPolicyVersion as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@api.endpoint("POST", "/v1/policy/dry-run", role="viewer", out=m.DryRunOut, body=m.DryRunRequest)
def dry_run(body: m.DryRunRequest) -> m.DryRunOut:
    """How recent decisions would change under a proposed policy (nothing is written)."""
    if body.policy is not None and body.patch is not None:
        raise ApiError(422, "invalid", "give policy or patch, not both")
    policy = _validated(body.policy, body.patch)
    r = runtime().redis
    found = policyops.dry_run(r, body.namespace, policy, body.hours, body.max_events)
    return m.DryRunOut(
        namespace=body.namespace,
        current_version=_policies().current().version,
        examined=found.examined,
        skipped_moderated=found.skipped_moderated,
        changed=found.changed,
        transitions=[
            m.Transition(old=old, new=new, count=n)
            for (old, new), n in sorted(found.transitions.items())
        ],
        truncated=found.truncated,
        method=policyops.DRY_RUN_METHOD,
    )


# --- accounts --------------------------------------------------------------------------


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
    policy = _policies().current().policy
    found = accounts.account_risk(r, ns, account_id) or {}
    rows = load_window(r, ns, clock(r, ns) - policy.graph.window_s, policy.graph)
    mine = rows.newest_first(account=account_id)
    rel = reputation.reliability(r, ns, [account_id], policy.consistency.reputation)
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
        action(r, account_id, actor=_actor(), note=body.note)
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


# --- allow / deny lists ----------------------------------------------------------------


def _kind(kind: str) -> lists.Kind:
    try:
        return lists.normalise_kind(kind)
    except lists.InvalidEntry as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@api.endpoint("GET", "/v1/lists/{kind}", role="viewer", out=m.ListOut)
def get_list(kind: str) -> m.ListOut:
    """Entries of the ip, subnet or device list."""
    k = _kind(kind)
    found = lists.entries(runtime().redis, k)
    return m.ListOut(
        kind=k,
        entries=[m.ListEntryOut(kind=k, value=v, **e) for v, e in sorted(found.items())],
    )


@api.endpoint("POST", "/v1/lists/{kind}", role="admin", out=m.ListEntryOut, body=m.ListEntryIn)
def put_list_entry(kind: str, body: m.ListEntryIn) -> m.ListEntryOut:
    """Allow or deny an IP, subnet or device."""
    k = _kind(kind)
    r = runtime().redis
    try:
        value = lists.put(r, k, body.value, body.action, actor=_actor(), note=body.note)
    except lists.InvalidEntry as exc:
        raise ApiError(
            422, "invalid", str(exc), [m.FieldError(loc="value", msg=str(exc), type="value_error")]
        ) from exc
    return m.ListEntryOut(kind=k, value=value, **lists.entries(r, k)[value])


@api.endpoint("POST", "/v1/lists/{kind}/remove", role="admin", out=m.RemovedOut, body=m.ListRemove)
def remove_list_entry(kind: str, body: m.ListRemove) -> m.RemovedOut:
    """Remove an entry from a list."""
    k = _kind(kind)
    try:
        removed = lists.remove(runtime().redis, k, body.value, actor=_actor())
    except lists.InvalidEntry as exc:
        raise ApiError(
            422, "invalid", str(exc), [m.FieldError(loc="value", msg=str(exc), type="value_error")]
        ) from exc
    return m.RemovedOut(removed=removed)


# --- purge -----------------------------------------------------------------------------


def _version(v: Version) -> m.VersionOut:
    return m.VersionOut(
        version=v.version,
        changed=v.changed,
        live=v.live,
        quarantined=v.quarantined,
        note=v.note,
        actor=v.actor,
    )


@api.endpoint("POST", "/v1/purge/accounts", role="admin", out=m.VersionOut, body=m.PurgeAccounts)
def purge_accounts(body: m.PurgeAccounts) -> m.VersionOut:
    """Quarantine every stored item of the accounts (a new dataset version)."""
    rt = runtime()
    return _version(
        purging.purge_accounts(rt.redis, rt.pipeline.store, body.account_ids, _actor(), body.note)
    )


@api.endpoint(
    "POST", "/v1/purge/cluster", role="admin", out=m.VersionOut, body=m.PurgeCluster, errors=(404,)
)
def purge_cluster(body: m.PurgeCluster) -> m.VersionOut:
    """Quarantine every stored item of a cluster's members (last analysis)."""
    rt = runtime()
    try:
        return _version(
            purging.purge_cluster(
                rt.redis, rt.pipeline.store, body.namespace, body.cluster_id, _actor(), body.note
            )
        )
    except purging.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@api.endpoint("POST", "/v1/purge/range", role="admin", out=m.VersionOut, body=m.PurgeRange)
def purge_range(body: m.PurgeRange) -> m.VersionOut:
    """Quarantine every stored item received in [start, end)."""
    start, end = _aware(body.start), _aware(body.end)
    if start >= end:
        raise ApiError(
            422,
            "invalid",
            "start must be before end",
            [m.FieldError(loc="end", msg="must be after start", type="value_error")],
        )
    rt = runtime()
    return _version(
        purging.purge_range(
            rt.redis, rt.pipeline.store, start, end, _actor(), body.namespace, body.note
        )
    )


@api.endpoint("POST", "/v1/purge/restore", role="admin", out=m.VersionOut, body=m.RestoreRequest)
def purge_restore(body: m.RestoreRequest) -> m.VersionOut:
    """Bring quarantined items back (a new dataset version)."""
    if not body.account_ids and not body.event_ids:
        raise ApiError(422, "invalid", "give account_ids or event_ids")
    rt = runtime()
    return _version(
        purging.restore(
            rt.redis, rt.pipeline.store, _actor(), body.account_ids, body.event_ids, body.note
        )
    )


# --- namespaces ------------------------------------------------------------------------


def _namespace_out(ns: str) -> m.NamespaceOut:
    found = info(runtime().redis, ns)
    return m.NamespaceOut(**found.__dict__)


@api.endpoint("GET", "/v1/namespaces", role="viewer", out=m.NamespacesOut)
def list_namespaces() -> m.NamespacesOut:
    """Every namespace with its counters, queue depths, lag and lockdown."""
    return m.NamespacesOut(namespaces=[_namespace_out(ns) for ns in known(runtime().redis)])


@api.endpoint("GET", "/v1/namespaces/{namespace}", role="viewer", out=m.NamespaceOut)
def show_namespace(namespace: str) -> m.NamespaceOut:
    """One namespace's counters, queue depths, lag and lockdown."""
    if namespace not in known(runtime().redis):
        raise ApiError(404, "not_found", "no such namespace")
    return _namespace_out(namespace)


@api.endpoint(
    "POST",
    "/v1/namespaces/{namespace}/lockdown",
    role="admin",
    out=m.NamespaceOut,
    body=m.LockdownIn,
)
def set_lockdown(namespace: str, body: m.LockdownIn) -> m.NamespaceOut:
    """Lock a namespace down (every new event to review) or clear it."""
    if not (1 <= len(namespace) <= 128):
        raise ApiError(404, "not_found", "no such namespace")
    lockdown.set_lockdown(runtime().redis, namespace, body.on, _actor(), body.reason)
    return _namespace_out(namespace)


# --- audit and keys --------------------------------------------------------------------


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


class AuditQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    actor: str | None = pydantic.Field(None, max_length=200)
    action: str | None = pydantic.Field(None, max_length=200, description="exact or prefix*")
    since: datetime | None = None
    until: datetime | None = None
    limit: int = pydantic.Field(100, ge=1, le=m.AUDIT_MAX)

    @pydantic.field_validator("since", "until", mode="before")
    @classmethod
    def _rfc3339_only(cls, value: object) -> object:
        """What the schema's `date-time` format allows, no more: pydantic would also
        take epoch numbers, and `datetime.fromisoformat` dates alone, week dates or
        times without an offset ("20000101" got a 200; schemathesis flagged it)."""
        if not isinstance(value, str):
            return value
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
        return datetime.fromisoformat(value.upper())


AUDIT_SCAN_MAX = 100_000
"""Newest audit entries examined per query at most."""


@api.endpoint("GET", "/v1/audit", role="viewer", out=m.AuditOut, query=AuditQuery)
def audit_log(query: AuditQuery) -> m.AuditOut:
    """Audit entries, newest first, filtered by actor, action (or prefix*) and time."""
    r = runtime().redis
    since = _aware(query.since) if query.since else None
    until = _aware(query.until) if query.until else None
    out: list[dict[str, Any]] = []
    for entry in audit.entries(r, AUDIT_SCAN_MAX):
        if query.actor is not None and entry.get("actor") != query.actor:
            continue
        act = str(entry.get("action", ""))
        if query.action is not None and not (
            act.startswith(query.action[:-1]) if query.action.endswith("*") else act == query.action
        ):
            continue
        at = datetime.fromisoformat(entry["at"])
        if until is not None and at >= until:
            continue
        if since is not None and at < since:
            break  # newest first: everything further is older
        out.append(entry)
        if len(out) >= query.limit:
            break
    return m.AuditOut(entries=out)


@api.endpoint("GET", "/v1/keys", role="admin", out=m.KeysOut)
def list_keys() -> m.KeysOut:
    """API keys (never their secrets)."""
    return m.KeysOut(keys=[m.KeyInfo(**k) for k in auth.list_keys(runtime().redis)])


@api.endpoint("POST", "/v1/keys", role="admin", out=m.KeyCreated, body=m.KeyIn, status=201)
def create_key(body: m.KeyIn) -> m.KeyCreated:
    """A new API key; its secret is in this answer only."""
    key_id, secret = auth.add_key(runtime().redis, body.name, body.role, actor=_actor())
    return m.KeyCreated(key_id=key_id, name=body.name, role=body.role, secret=secret)


@api.endpoint("POST", "/v1/keys/{key_id}/revoke", role="admin", out=m.RemovedOut)
def revoke_key(key_id: str) -> m.RemovedOut:
    """Revoke an API key."""
    return m.RemovedOut(removed=auth.revoke_key(runtime().redis, key_id, actor=_actor()))


@api.endpoint("GET", "/v1/whoami", role="viewer", out=m.WhoAmI)
def whoami() -> m.WhoAmI:
    """The caller's name and role."""
    p: auth.Principal = g.principal
    return m.WhoAmI(name=p.name, role=p.role, via=p.via)


def create_admin_blueprint() -> Blueprint:
    """The admin API blueprint; mount it under `settings.admin_prefix`."""
    bp = Blueprint("admin", __name__)
    api.install(bp)

    @bp.get("/v1/openapi.json")
    def openapi_json() -> Any:
        prefix = request.path[: -len("/v1/openapi.json")]
        return jsonify(openapi(api, prefix, "feedbackguard admin API", __version__))

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return error_response(
            ApiError(
                exc.code or 500,
                (exc.name or "error").lower().replace(" ", "_"),
                exc.description or "",
            )
        )

    return bp
