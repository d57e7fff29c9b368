"""The moderators' queue: filters, cursor paging and leases over the items in review.

The pipeline keeps one sorted set of the event ids in review, scored by `received_at`
(`keys.review`). This module adds, per namespace, secondary indexes with the
same scores so a filtered page is one short walk instead of a scan of every record:

- `rq:reason:<code>` and `rq:account:<account>`: ids by reason code and by account;
- `rq:risk`: id -> risk (risk-range filter);
- `rq:meta`: id -> {"a": account, "c": [codes]} (to take an id out of its indexes);
- `rq:indexed`: the ids indexed so far, scored like the review set.

Clusters are not indexed per item (membership changes with every analysis run): a
cluster filter is the union of its member accounts' indexes (`accounts.cluster`),
cached for a few seconds.

The state machine (`pipeline.state.apply`) calls `index` where an item enters or stays
in review and `unindex` where it leaves. Without that hook, `ensure_indexed` catches
up lazily: it indexes review ids missing from `rq:indexed` (and drops ids that left
review) whenever the two sets' sizes differ, and at least every `sync_s` seconds.

Leases: `rq:leases` (id -> expiry, ms) and `rq:holders` (id -> moderator), taken in the
same Lua script that finds the next items (`review_scan.lua`), so two moderators never
get the same item; an expired lease frees the item for the next claim.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from feedbackguard import accounts, keys, scripts
from feedbackguard.pipeline import ledger
from feedbackguard.review import scan

# Ids loaded per round trip when indexing lazily.
SYNC_CHUNK = 2000


@dataclass(frozen=True)
class Filters:
    """What a moderator narrows the queue to. Empty filters: the whole queue."""

    reason: str | None = None
    account: str | None = None
    cluster: str | None = None
    risk_min: float = 0.0
    risk_max: float = 1.0


@dataclass
class Page:
    """Ids of one page, oldest first, and the cursor of the next (None at the end)."""

    ids: list[str] = field(default_factory=list)
    cursor: str | None = None


def index(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    event_id: str,
    *,
    account_id: str,
    received_at: float,
    risk: float,
    codes: Sequence[str],
) -> None:
    """Queue on `pipe` the index entries of an item that enters (or stays in) review
    with a decision of `risk` and reason `codes` (`pipeline.state.apply` calls it)."""
    codes = sorted(set(codes))
    pipe.zadd(keys.review_indexed(namespace), {event_id: received_at})
    pipe.zadd(keys.review_risk(namespace), {event_id: risk})
    pipe.zadd(keys.review_account(namespace, account_id), {event_id: received_at})
    for code in codes:
        pipe.zadd(keys.review_reason(namespace, code), {event_id: received_at})
    if codes:
        pipe.sadd(keys.review_codes(namespace), *codes)
    pipe.hset(keys.review_meta(namespace), event_id, orjson.dumps({"a": account_id, "c": codes}))


def index_record(
    pipe: redis.client.Pipeline[bytes], namespace: str, event_id: str, record: ledger.Record
) -> None:
    """`index` for a record in review (the lazy catch-up of `ensure_indexed`)."""
    decision = record.decision
    index(
        pipe,
        namespace,
        event_id,
        account_id=record.event.account_id,
        received_at=record.event.received_at.timestamp(),
        risk=decision.risk,
        codes=[reason.code for reason in decision.reasons],
    )


def unindex(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    entries: Sequence[tuple[str, str, Sequence[str]]],
) -> None:
    """Queue on `pipe` the removal of (event_id, account, reason codes) entries and of
    their leases."""
    if not entries:
        return
    ids = [event_id for event_id, _, _ in entries]
    pipe.zrem(keys.review_indexed(namespace), *ids)
    pipe.zrem(keys.review_risk(namespace), *ids)
    pipe.zrem(keys.review_leases(namespace), *ids)
    pipe.hdel(keys.review_holders(namespace), *ids)
    pipe.hdel(keys.review_meta(namespace), *ids)
    for event_id, account, codes in entries:
        pipe.zrem(keys.review_account(namespace, account), event_id)
        for code in codes:
            pipe.zrem(keys.review_reason(namespace, code), event_id)


def ensure_indexed(
    r: redis.Redis[bytes], namespace: str, sync_s: float, force: bool = False
) -> int:
    """Bring the indexes up to date with the review set when they may lag (see the
    module docstring); returns how many ids were indexed or dropped."""
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.review(namespace))
    pipe.zcard(keys.review_indexed(namespace))
    in_review, indexed = pipe.execute()
    # Same size: normally in step; check for swaps only now and then.
    if (
        not force
        and in_review == indexed
        and not r.set(keys.review_synced(namespace), b"1", nx=True, px=max(1, int(sync_s * 1000)))
    ):
        return 0
    review, done = keys.review(namespace), keys.review_indexed(namespace)
    missing = [raw.decode() for raw in r.zdiff([review, done])]
    gone = [raw.decode() for raw in r.zdiff([done, review])]
    changed = 0
    for start in range(0, len(missing), SYNC_CHUNK):
        chunk = missing[start : start + SYNC_CHUNK]
        pipe = r.pipeline(transaction=False)
        for event_id, record in zip(chunk, ledger.load(r, namespace, chunk), strict=True):
            if record is not None and record.decision.status == "review":
                index_record(pipe, namespace, event_id, record)
                changed += 1
        pipe.execute()
    for start in range(0, len(gone), SYNC_CHUNK):
        chunk = gone[start : start + SYNC_CHUNK]
        metas = r.hmget(keys.review_meta(namespace), chunk)
        entries: list[tuple[str, str, Sequence[str]]] = []
        for event_id, raw in zip(chunk, metas, strict=True):
            meta: dict[str, Any] = orjson.loads(raw) if raw else {"a": "", "c": []}
            entries.append((event_id, str(meta["a"]), [str(c) for c in meta["c"]]))
        pipe = r.pipeline(transaction=False)
        unindex(pipe, namespace, entries)
        pipe.execute()
        changed += len(entries)
    return changed


def _cluster_index(
    r: redis.Redis[bytes], namespace: str, cluster_id: str, cache_s: float
) -> str | None:
    """The key of the union of the cluster's member accounts' indexes (None when the
    last analysis has no such cluster)."""
    key = keys.review_cluster(namespace, cluster_id)
    if r.exists(key):
        return key
    found = accounts.cluster(r, namespace, cluster_id)
    if found is None:
        return None
    members = [keys.review_account(namespace, str(m)) for m in found.get("members", [])]
    pipe = r.pipeline(transaction=True)
    if members:
        pipe.zunionstore(key, members, aggregate="MIN")
    else:
        pipe.zadd(key, {"": 0})  # an empty but present cache entry
    pipe.pexpire(key, max(1, int(cache_s * 1000)))
    pipe.execute()
    return key


def _index_keys(
    r: redis.Redis[bytes], namespace: str, filters: Filters, cluster_cache_s: float
) -> list[str] | None:
    """The indexes an id must be in, most selective first (None: nothing can match)."""
    found: list[str] = []
    if filters.reason:
        found.append(keys.review_reason(namespace, filters.reason))
    if filters.account:
        found.append(keys.review_account(namespace, filters.account))
    if filters.cluster:
        cluster = _cluster_index(r, namespace, filters.cluster, cluster_cache_s)
        if cluster is None:
            return None
        found.append(cluster)
    if len(found) > 1:
        pipe = r.pipeline(transaction=False)
        for key in found:
            pipe.zcard(key)
        sizes = pipe.execute()
        found = [key for _, key in sorted(zip(sizes, found, strict=True))]
    return found


def _scan(
    r: redis.Redis[bytes],
    namespace: str,
    filters: Filters,
    *,
    mode: str,
    cursor: str | None,
    limit: int,
    budget: int,
    lease_ms: int = 0,
    actor: str = "",
    skip_leased: bool = False,
    cluster_cache_s: float,
) -> Page:
    index_keys = _index_keys(r, namespace, filters, cluster_cache_s)
    if index_keys is None:
        return Page()
    review = keys.review(namespace)
    primary = index_keys[0] if index_keys else review
    score, event_id = scan.decode_cursor(cursor)
    ids, last_score, last_id, exhausted = scripts.run(
        r,
        "review_scan",
        [
            primary,
            review,
            keys.review_risk(namespace),
            keys.review_leases(namespace),
            keys.review_holders(namespace),
            *index_keys[1:],
        ],
        [
            mode,
            score,
            event_id,
            limit,
            repr(float(filters.risk_min)),
            repr(float(filters.risk_max)),
            budget,
            int(time.time() * 1000),
            lease_ms,
            actor,
            "1" if skip_leased else "0",
        ],
    )
    found = [raw.decode() for raw in ids]
    next_cursor = None if exhausted or not last_score else scan.encode_cursor(last_score, last_id)
    return Page(ids=found, cursor=next_cursor)


def page(
    r: redis.Redis[bytes],
    namespace: str,
    filters: Filters,
    cursor: str | None = None,
    limit: int = 50,
    budget: int = 20_000,
    cluster_cache_s: float = 5.0,
) -> Page:
    """One page of ids in review matching `filters`, oldest first, after `cursor`.

    At most `budget` ids are examined per call: a very narrow risk filter may return
    a short (even empty) page with a cursor to go on from."""
    return _scan(
        r,
        namespace,
        filters,
        mode="page",
        cursor=cursor,
        limit=limit,
        budget=budget,
        cluster_cache_s=cluster_cache_s,
    )


def claim(
    r: redis.Redis[bytes],
    namespace: str,
    actor: str,
    lease_s: float,
    filters: Filters | None = None,
    count: int = 1,
    budget: int = 20_000,
    cluster_cache_s: float = 5.0,
) -> list[str]:
    """Lease the `count` oldest unleased items matching `filters` to `actor`."""
    return _scan(
        r,
        namespace,
        filters or Filters(),
        mode="claim",
        cursor=None,
        limit=count,
        budget=budget,
        lease_ms=max(1, int(lease_s * 1000)),
        actor=actor,
        skip_leased=True,
        cluster_cache_s=cluster_cache_s,
    ).ids


def holders(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[str | None]:
    """Who holds a live lease on each item (None: nobody)."""
    return scan.holders(r, keys.review_leases(namespace), keys.review_holders(namespace), event_ids)


def release(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str], actor: str) -> int:
    """Give back `actor`'s leases on the items; returns how many were released."""
    mine = [
        e
        for e, who in zip(event_ids, holders(r, namespace, event_ids), strict=True)
        if who == actor
    ]
    if mine:
        scan.drop(r, keys.review_leases(namespace), keys.review_holders(namespace), mine)
    return len(mine)


def all_ids(
    r: redis.Redis[bytes],
    namespace: str,
    filters: Filters,
    chunk: int = 5000,
    cluster_cache_s: float = 5.0,
) -> list[str]:
    """Every id in review matching `filters` (for bulk actions)."""
    out: list[str] = []
    cursor: str | None = None
    while True:
        found = page(
            r,
            namespace,
            filters,
            cursor=cursor,
            limit=chunk,
            budget=max(chunk, 20_000),
            cluster_cache_s=cluster_cache_s,
        )
        out.extend(found.ids)
        if found.cursor is None:
            return out
        cursor = found.cursor


def reason_codes(r: redis.Redis[bytes], namespace: str) -> list[str]:
    """Reason codes seen in this namespace's review queue (for the filter menu)."""
    return sorted(raw.decode() for raw in r.smembers(keys.review_codes(namespace)))
