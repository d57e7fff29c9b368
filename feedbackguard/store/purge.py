"""Purge and restore: take stored items out of the training data (a new dataset
version with tombstones, audited) and put them back. Shared by the admin API and
`feedbackguard purge`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis

from feedbackguard import accounts, audit
from feedbackguard.store.models import Version
from feedbackguard.store.queries import EventKey
from feedbackguard.store.store import Store


class NotFound(LookupError):
    """The cluster to purge is not in the last analysis."""


def _audited(
    r: redis.Redis[bytes],
    actor: str,
    action: str,
    version: Version,
    note: str,
    **detail: object,
) -> Version:
    audit.record(
        r,
        actor,
        f"store.{action}",
        note=note,
        version=version.version,
        changed=version.changed,
        **detail,
    )
    return version


def _reason(what: str, note: str) -> str:
    return what + (f": {note}" if note else "")


def purge_accounts(
    r: redis.Redis[bytes], store: Store, account_ids: Sequence[str], actor: str, note: str = ""
) -> Version:
    what = f"purge of accounts {', '.join(account_ids)}"
    version = store.quarantine(account_ids=account_ids, reason=_reason(what, note), actor=actor)
    return _audited(r, actor, "purge", version, note, accounts=list(account_ids), what=what)


def purge_cluster(
    r: redis.Redis[bytes], store: Store, namespace: str, cluster_id: str, actor: str, note: str = ""
) -> Version:
    found = accounts.cluster(r, namespace, cluster_id)
    if found is None:
        raise NotFound(f"no cluster {cluster_id!r} in {namespace} (not in the last analysis)")
    members = list(found["members"])
    what = f"purge of cluster {cluster_id}"
    version = store.quarantine(account_ids=members, reason=_reason(what, note), actor=actor)
    return _audited(
        r, actor, "purge", version, note, accounts=members, cluster=cluster_id, what=what
    )


def items_in_range(
    store: Store, start: datetime, end: datetime, namespace: str | None = None
) -> list[EventKey]:
    """(namespace, event_id) of live stored items received in [start, end) (event time)."""
    return [
        (item.event.namespace, item.event.event_id)
        for item in store.iter_rows()
        if start <= item.event.received_at < end
        and (namespace is None or item.event.namespace == namespace)
    ]


def purge_range(
    r: redis.Redis[bytes],
    store: Store,
    start: datetime,
    end: datetime,
    actor: str,
    namespace: str | None = None,
    note: str = "",
) -> Version:
    ids = items_in_range(store, start, end, namespace)
    what = f"purge of events received in [{start.isoformat()}, {end.isoformat()})" + (
        f" in {namespace}" if namespace else ""
    )
    if not ids:
        version = store.new_version(note=f"quarantine: {_reason(what, note)}", actor=actor)
    else:
        version = store.quarantine(ids, reason=_reason(what, note), actor=actor)
    return _audited(
        r,
        actor,
        "purge",
        version,
        note,
        start=start.isoformat(),
        end=end.isoformat(),
        namespace=namespace,
        what=what,
    )


def restore(
    r: redis.Redis[bytes],
    store: Store,
    actor: str,
    account_ids: Sequence[str] = (),
    event_ids: Sequence[str] = (),
    note: str = "",
    namespace: str = "default",
) -> Version:
    """Bring back the quarantined items of `account_ids` (every namespace) and the
    events `event_ids` of `namespace`."""
    if not account_ids and not event_ids:
        raise ValueError("restore: give account_ids or event_ids")
    what = "restore of " + ", ".join(
        part
        for part in (
            f"accounts {', '.join(account_ids)}" if account_ids else "",
            f"{len(event_ids)} event(s) of {namespace}" if event_ids else "",
        )
        if part
    )
    version = store.restore(
        [(namespace, event_id) for event_id in event_ids],
        account_ids,
        reason=_reason(what, note),
        actor=actor,
    )
    return _audited(
        r,
        actor,
        "restore",
        version,
        note,
        accounts=list(account_ids),
        events=len(event_ids),
        namespace=namespace,
        what=what,
    )
