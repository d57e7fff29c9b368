"""Review cases: the events in review gathered by what a moderator decides about at once.

A moderator decides cases, not events. Each event in review is in exactly one open
case, chosen from its last decision when it enters review:

- a **group** case (`g`) when a reason names a group of accounts (`Reason.group`: a
  lockstep group, a dense block, an infrastructure cluster): the group's events;
- an **item** case (`i`) when a reason is about the feedback on an item disagreeing
  with the rest (`ITEM_CODES`): the item's contested feedback;
- else an **account** case (`a`): the account's waiting events.

Events join the open case of their key as they arrive; an event that stays in review
with a new decision stays in its case, unless it now belongs to a kind that explains
more (an account's event later found in a group moves to the group's case). A case
closes when its last event leaves review; the next event of the same key opens a new
one. An event sent back to review by an undo or a reopen carries the case it left
(`pipeline.state.Change.case`) and rejoins it.

The index lives in Redis (keys `keys.case_*`) and is changed by `case_index.lua`,
queued by `update` in the MULTI of `pipeline.state.apply` that changes the statuses:
it always agrees with the review set. Per open case it keeps the events, the sums of
their risk and harm, the accounts and reason codes with their counts, and the
strongest reason seen (why the case is here).

**Triage.** Open cases are ordered by expected harm: the sum of their events' harm
(`Decision.harm`, what admitting each would change) times the case's mean risk (how
likely the case is poison). While no event in the namespace carries a harm estimate
(every case's expected harm is 0), they are ordered by mean risk x events (the sum of
risks) instead. Leases (`claim`) are per case, taken in the same script that finds
the next case, so two moderators never get the same case.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import orjson
import redis

from feedbackguard import keys, scripts
from feedbackguard.review import scan

Kind = Literal["a", "i", "g"]
KIND_NAMES: Final[Mapping[str, str]] = {"a": "account", "i": "item", "g": "group"}

ITEM_CODES: Final = frozenset(
    {"consistency.consensus", "consistency.model", "consistency.knn", "reports.correlated"}
)
"""Reason codes about an event's feedback disagreeing with what is known of its item:
such events are judged together with the item's other contested feedback."""

GROUP_ORDER: Final = (
    "sybil.cluster",
    "coordination.lockstep",
    "coordination.dense_block",
    "sybil.infrastructure",
)
"""When reasons name several groups, the case is the first one's in this order (a
group confirmed by several detectors first); other grouped codes come after, by name."""

ByHarm = Literal["harm", "risk"]


class Join(NamedTuple):
    """An event entering (or staying in) review, as the case index needs it."""

    event_id: str
    account_id: str
    received_at: float
    risk: float
    harm: float
    kind: Kind
    label: str
    hint: str
    """The case to rejoin (an undo or reopen), or ""."""
    codes: tuple[str, ...]
    top_code: str
    top_detail: str
    top_score: float


@dataclass(frozen=True)
class Filters:
    """What a moderator narrows the cases to. Empty filters: every open case."""

    kind: Kind | None = None
    reason: str | None = None
    account: str | None = None
    risk_min: float = 0.0
    risk_max: float = 1.0


@dataclass
class Case:
    """An open (or closed) case as the queue shows it."""

    case_id: str
    kind: Kind
    label: str
    opened_at: float
    """received_at of the event that opened it."""
    open: bool
    events: int = 0
    accounts: int = 0
    risk_sum: float = 0.0
    harm: float = 0.0
    """The sum of its events' harm."""
    oldest_at: float | None = None
    codes: dict[str, int] = field(default_factory=dict)
    top_code: str = ""
    top_detail: str = ""
    top_score: float = 0.0
    version: int = 0
    """Events joined so far: a decision names the version it saw."""
    holder: str | None = None
    over_budget: bool = False

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    @property
    def risk(self) -> float:
        """Mean risk of its events: how likely the case is poison."""
        return self.risk_sum / self.events if self.events else 0.0

    @property
    def expected_harm(self) -> float:
        """Harm x mean risk: what triage orders cases by."""
        return self.harm * self.risk


@dataclass
class Page:
    """Case ids of one page in triage order, and the cursor of the next (None at the end)."""

    ids: list[str] = field(default_factory=list)
    cursor: str | None = None
    order: ByHarm = "risk"


def as_json(case: Case) -> dict[str, Any]:
    """A case as the CLI and the API show it."""
    return {
        "case_id": case.case_id,
        "kind": case.kind_name,
        "label": case.label,
        "open": case.open,
        "events": case.events,
        "accounts": case.accounts,
        "risk": round(case.risk, 4),
        "harm": round(case.harm, 4),
        "expected_harm": round(case.expected_harm, 4),
        "opened_at": case.opened_at,
        "oldest_at": case.oldest_at,
        "codes": case.codes,
        "why": {"code": case.top_code, "detail": case.top_detail, "score": case.top_score},
        "version": case.version,
        "claimed_by": case.holder,
        "over_budget": case.over_budget,
    }


def case_key(
    account_id: str, item_id: str, reasons: Sequence[Mapping[str, Any]]
) -> tuple[Kind, str]:
    """The kind and label of the case an event with `reasons` (decision JSON) belongs to."""
    groups = {str(r["code"]): str(r.get("group") or "") for r in reasons if r.get("group")}
    if groups:
        rank = {code: i for i, code in enumerate(GROUP_ORDER)}
        code = min(groups, key=lambda c: (rank.get(c, len(rank)), c))
        return "g", groups[code]
    if any(r["code"] in ITEM_CODES for r in reasons):
        return "i", item_id
    return "a", account_id


def join(event_id: str, account_id: str, received_at: float, record: bytes, hint: str = "") -> Join:
    """What the index needs of an event entering review whose record is `record`."""
    # the record's JSON is `{"event": ..., "trail": [...]}` (`ledger.encode_record`)
    parsed = orjson.loads(record)
    decision = parsed["trail"][-1]
    reasons = decision["reasons"]
    kind, label = case_key(account_id, str(parsed["event"]["item_id"]), reasons)
    top = max(reasons, key=lambda r: float(r["score"]), default=None)
    return Join(
        event_id=event_id,
        account_id=account_id,
        received_at=received_at,
        risk=float(decision["risk"]),
        harm=float(decision.get("harm", 0.0)),
        kind=kind,
        label=label,
        hint=hint,
        codes=tuple(sorted({str(r["code"]) for r in reasons})),
        top_code="" if top is None else str(top["code"]),
        top_detail="" if top is None else str(top["detail"]),
        top_score=0.0 if top is None else float(top["score"]),
    )


def _index_keys(namespace: str) -> list[str]:
    return [
        keys.case_members(namespace),
        keys.case_events(namespace),
        keys.case_open(namespace),
        keys.case_seq(namespace),
        keys.case_meta(namespace),
        keys.case_counts(namespace),
        keys.case_by_harm(namespace),
        keys.case_by_risk(namespace),
        keys.case_by_age(namespace),
        keys.case_closed(namespace),
        keys.case_over(namespace),
        keys.case_leases(namespace),
        keys.case_holders(namespace),
    ]


def update(
    pipe: redis.client.Pipeline[bytes] | redis.Redis[bytes],
    namespace: str,
    joins: Sequence[Join],
    leaves: Sequence[str],
) -> None:
    """Queue on `pipe` the case index's side of events entering (or staying in) review
    and leaving it (`pipeline.state.apply` calls it in its MULTI)."""
    if not joins and not leaves:
        return
    ops = {"l": list(leaves), "j": [list(j) for j in joins]}
    scripts.run(pipe, "case_index", _index_keys(namespace), [repr(time.time()), orjson.dumps(ops)])


def catch_up(r: redis.Redis[bytes], namespace: str) -> int:
    """Put events in review that are in no case (in review before cases existed) into
    their cases, and drop ids that left review unnoticed; returns how many. Cheap when
    the index is in step (two ZCARDs)."""
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.review(namespace))
    pipe.zcard(keys.case_members(namespace))
    in_review, in_cases = pipe.execute()
    if in_review == in_cases:
        return 0
    review, members = keys.review(namespace), keys.case_members(namespace)
    missing = [raw.decode() for raw in r.zdiff([review, members])]
    gone = [raw.decode() for raw in r.zdiff([members, review])]
    chunk = 2000
    for start in range(0, max(len(missing), len(gone)), chunk):
        part = missing[start : start + chunk]
        raws = r.mget([keys.record(namespace, e) for e in part]) if part else []
        joins = []
        for event_id, raw in zip(part, raws, strict=True):
            if raw is None:
                continue
            parsed = orjson.loads(raw)
            if parsed["trail"][-1]["status"] != "review":
                continue
            event = parsed["event"]
            joins.append(
                join(event_id, str(event["account_id"]), _epoch(event["received_at"]), raw)
            )
        update(r, namespace, joins, gone[start : start + chunk])
    return len(missing) + len(gone)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def order(r: redis.Redis[bytes], namespace: str) -> ByHarm:
    """Which order triage uses now: by expected harm once any open case has some,
    else by risk x events."""
    top = r.zrevrange(keys.case_by_harm(namespace), 0, 0, withscores=True)
    return "harm" if top and float(top[0][1]) > 0 else "risk"


def _order_key(namespace: str, by: ByHarm) -> str:
    return keys.case_by_harm(namespace) if by == "harm" else keys.case_by_risk(namespace)


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
    skip: str = "",
) -> Page:
    by = order(r, namespace)
    score, after = scan.decode_cursor(cursor)
    found, last_score, last_id, exhausted = scripts.run(
        r,
        "case_scan",
        [
            _order_key(namespace, by),
            keys.case_counts(namespace),
            keys.case_leases(namespace),
            keys.case_holders(namespace),
        ],
        [
            mode,
            score,
            after,
            limit,
            budget,
            int(time.time() * 1000),
            lease_ms,
            actor,
            filters.kind or "",
            filters.reason or "",
            repr(float(filters.risk_min)),
            repr(float(filters.risk_max)),
            skip,
        ],
    )
    ids = [raw.decode() for raw in found]
    next_cursor = None if exhausted or not last_score else scan.encode_cursor(last_score, last_id)
    return Page(ids=ids, cursor=next_cursor, order=by)


def page(
    r: redis.Redis[bytes],
    namespace: str,
    filters: Filters,
    cursor: str | None = None,
    limit: int = 50,
    budget: int = 20_000,
) -> Page:
    """One page of open case ids matching `filters`, in triage order, after `cursor`.

    At most `budget` cases are examined per call: a narrow filter may return a short
    (even empty) page with a cursor to go on from."""
    if filters.account is not None:
        return _account_page(r, namespace, filters, limit)
    return _scan(r, namespace, filters, mode="page", cursor=cursor, limit=limit, budget=budget)


def _account_page(r: redis.Redis[bytes], namespace: str, filters: Filters, limit: int) -> Page:
    """The open cases holding an account's events (few: read them all)."""
    assert filters.account is not None
    ids = [raw.decode() for raw in r.zrange(keys.review_account(namespace, filters.account), 0, -1)]
    found = r.zmscore(keys.case_members(namespace), ids) if ids else []
    cases = {_case_id(c) for c in found if c is not None}
    by = order(r, namespace)
    loaded = [c for c in load(r, namespace, sorted(cases)) if c is not None and c.open]
    kept = [
        c
        for c in loaded
        if (filters.kind is None or c.kind == filters.kind)
        and (filters.reason is None or filters.reason in c.codes)
        and filters.risk_min <= c.risk <= filters.risk_max
    ]
    kept.sort(key=lambda c: (-(c.expected_harm if by == "harm" else c.risk_sum), c.case_id))
    return Page(ids=[c.case_id for c in kept[:limit]], cursor=None, order=by)


def _case_id(score: float) -> str:
    return str(int(score))


def claim(
    r: redis.Redis[bytes],
    namespace: str,
    actor: str,
    lease_s: float,
    filters: Filters | None = None,
    budget: int = 20_000,
    skip: str = "",
) -> str | None:
    """Lease to `actor` the first open case in triage order matching `filters` that no
    other moderator holds (the actor's own come first in their place), passing over
    `skip` (the case the moderator moves on from)."""
    chosen = filters or Filters()
    if chosen.account is not None:
        for case_id in page(r, namespace, chosen).ids:
            if case_id != skip and lease(r, namespace, case_id, actor, lease_s):
                return case_id
        return None
    found = _scan(
        r,
        namespace,
        chosen,
        mode="claim",
        cursor=None,
        limit=1,
        budget=budget,
        lease_ms=max(1, int(lease_s * 1000)),
        actor=actor,
        skip=skip,
    )
    return found.ids[0] if found.ids else None


def lease(r: redis.Redis[bytes], namespace: str, case_id: str, actor: str, lease_s: float) -> bool:
    """Take (or renew) `actor`'s lease on an open case, unless another moderator holds a
    live one (checked and taken in one transaction: two moderators never both get it)."""
    leases, names = keys.case_leases(namespace), keys.case_holders(namespace)
    with r.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(leases, names, keys.case_by_risk(namespace))
            until = pipe.zscore(leases, case_id)
            holder = pipe.hget(names, case_id)
            taken = until is not None and until > time.time() * 1000 and holder != actor.encode()
            if taken or pipe.zscore(keys.case_by_risk(namespace), case_id) is None:
                return False
            pipe.multi()
            pipe.zadd(leases, {case_id: int((time.time() + lease_s) * 1000)})
            pipe.hset(names, case_id, actor)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def holders(r: redis.Redis[bytes], namespace: str, case_ids: Sequence[str]) -> list[str | None]:
    """Who holds a live lease on each case (None: nobody)."""
    return scan.holders(r, keys.case_leases(namespace), keys.case_holders(namespace), case_ids)


def release(r: redis.Redis[bytes], namespace: str, case_id: str, actor: str) -> bool:
    """Give back `actor`'s lease on a case."""
    if holders(r, namespace, [case_id])[0] != actor:
        return False
    scan.drop(r, keys.case_leases(namespace), keys.case_holders(namespace), [case_id])
    return True


_FIELDS: Final = ("n", "na", "r", "h", "k", "cl", "v")


def load(r: redis.Redis[bytes], namespace: str, case_ids: Sequence[str]) -> list[Case | None]:
    """The cases (open or closed, while remembered); None for unknown ids."""
    if not case_ids:
        return []
    counts = keys.case_counts(namespace)
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.case_meta(namespace), list(case_ids))
    for case_id in case_ids:
        pipe.hmget(counts, [f"{case_id}:{f}" for f in _FIELDS])
    pipe.zmscore(keys.case_by_age(namespace), list(case_ids))
    pipe.zmscore(keys.case_over(namespace), list(case_ids))
    pipe.zmscore(keys.case_leases(namespace), list(case_ids))
    pipe.hmget(keys.case_holders(namespace), list(case_ids))
    replies = pipe.execute()
    metas, per_case = replies[0], replies[1 : 1 + len(case_ids)]
    ages, over, until, names = replies[-4:]
    now_ms = time.time() * 1000
    code_lists = [orjson.loads(found[5]) if found[5] else [] for found in per_case]
    pipe = r.pipeline(transaction=False)
    for case_id, codes in zip(case_ids, code_lists, strict=True):
        pipe.hmget(counts, [f"{case_id}:c:{code}" for code in codes] or [f"{case_id}:-"])
    code_counts = pipe.execute()
    out: list[Case | None] = []
    for i, case_id in enumerate(case_ids):
        raw_meta = metas[i]
        if raw_meta is None:
            out.append(None)
            continue
        meta = orjson.loads(raw_meta)
        n, na, risk, harm, _kind, _, version = per_case[i]
        out.append(
            Case(
                case_id=case_id,
                kind=meta["kind"],
                label=str(meta["label"]),
                opened_at=float(meta["opened"]),
                open=n is not None and int(n) > 0,
                events=int(n or 0),
                accounts=int(na or 0),
                risk_sum=max(0.0, float(risk or 0.0)),
                harm=max(0.0, float(harm or 0.0)),
                oldest_at=ages[i],
                codes={
                    code: int(c or 0)
                    for code, c in zip(code_lists[i], code_counts[i], strict=False)
                },
                top_code=str(meta.get("code", "")),
                top_detail=str(meta.get("detail", "")),
                top_score=float(meta.get("score", 0.0)),
                version=int(version or 0),
                holder=names[i].decode() if names[i] and until[i] and until[i] > now_ms else None,
                over_budget=over[i] is not None,
            )
        )
    return out


def get(r: redis.Redis[bytes], namespace: str, case_id: str) -> Case | None:
    return load(r, namespace, [case_id])[0]


def members(r: redis.Redis[bytes], namespace: str, case_id: str) -> list[str]:
    """The ids of a case's events in review, oldest first."""
    if not case_id.isdigit():
        return []
    ids = [raw.decode() for raw in r.zrangebyscore(keys.case_members(namespace), case_id, case_id)]
    if not ids:
        return []
    times = r.zmscore(keys.review(namespace), ids)
    return [i for _, i in sorted(zip((t or 0.0 for t in times), ids, strict=True))]


def cases_of(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[str | None]:
    """The open case of each event (None: not in review)."""
    if not event_ids:
        return []
    found = r.zmscore(keys.case_members(namespace), list(event_ids))
    return [None if c is None else _case_id(c) for c in found]


def open_count(r: redis.Redis[bytes], namespace: str) -> int:
    return int(r.zcard(keys.case_by_risk(namespace)))


def forget_closed(r: redis.Redis[bytes], namespace: str, before: float) -> int:
    """Drop what is remembered of cases closed before `before` (wall time) and not
    given the safe default (those stay until reopened or forgotten with their
    records); returns how many."""
    closed = keys.case_closed(namespace)
    old = [raw.decode() for raw in r.zrangebyscore(closed, "-inf", before)]
    if not old:
        return 0
    over = r.zmscore(keys.case_over(namespace), old)
    gone = [c for c, o in zip(old, over, strict=True) if o is None or o < before]
    pipe = r.pipeline(transaction=True)
    pipe.zrem(closed, *old)
    if gone:
        pipe.hdel(keys.case_meta(namespace), *gone)
        pipe.hdel(keys.case_counts(namespace), *(f"{c}:v" for c in gone))
        pipe.zrem(keys.case_over(namespace), *gone)
    pipe.execute()
    return len(gone)


def check(r: redis.Redis[bytes], namespace: str) -> list[str]:
    """What disagrees between the case index and the review set (empty: in step). For
    tests and `feedbackguard review status`."""
    problems: list[str] = []
    review = {raw.decode() for raw in r.zrange(keys.review(namespace), 0, -1)}
    member_rows = r.zrange(keys.case_members(namespace), 0, -1, withscores=True)
    by_case: dict[str, list[str]] = {}
    for raw, score in member_rows:
        by_case.setdefault(_case_id(score), []).append(raw.decode())
    in_cases = {e for ids in by_case.values() for e in ids}
    if review != in_cases:
        problems.append(
            f"review set and cases differ: {len(review - in_cases)} in no case, "
            f"{len(in_cases - review)} in a case but not in review"
        )
    open_ids = {raw.decode() for raw in r.zrange(keys.case_by_risk(namespace), 0, -1)}
    if open_ids != set(by_case):
        problems.append(f"open cases {sorted(open_ids)} != cases with events {sorted(by_case)}")
    for case in load(r, namespace, sorted(by_case)):
        if case is None:
            problems.append("a case with events has no meta")
            continue
        held = len(by_case[case.case_id])
        if case.events != held:
            problems.append(f"case {case.case_id}: counts {case.events} events, holds {held}")
    return problems
