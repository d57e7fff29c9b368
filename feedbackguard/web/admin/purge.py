"""Admin endpoints that quarantine stored items (by account, cluster or time range)
and restore them; each change is a new dataset version."""

from __future__ import annotations

from feedbackguard.store import Version
from feedbackguard.store import purge as purging
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import ApiError, Registry
from feedbackguard.web.admin.context import actor, aware
from feedbackguard.web.context import runtime

api = Registry()


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
        purging.purge_accounts(rt.redis, rt.pipeline.store, body.account_ids, actor(), body.note)
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
                rt.redis, rt.pipeline.store, body.namespace, body.cluster_id, actor(), body.note
            )
        )
    except purging.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@api.endpoint("POST", "/v1/purge/range", role="admin", out=m.VersionOut, body=m.PurgeRange)
def purge_range(body: m.PurgeRange) -> m.VersionOut:
    """Quarantine every stored item received in [start, end)."""
    start, end = aware(body.start), aware(body.end)
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
            rt.redis, rt.pipeline.store, start, end, actor(), body.namespace, body.note
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
            rt.redis,
            rt.pipeline.store,
            actor(),
            body.account_ids,
            body.event_ids,
            body.note,
            namespace=body.namespace,
        )
    )
