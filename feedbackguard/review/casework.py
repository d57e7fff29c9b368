"""Deciding a review case in one action: approve it, reject it, or split it (approve
the members a moderator ticked, reject the others); undo such an action; reopen a case
that was given the safe default for lack of review capacity (`review.budget`).

Every action goes through the state machine (`pipeline.state.apply`) in one MULTI
with one audit entry listing the events it approved and rejected, and is kept as an
action record (`keys.case_action`) so that it can be undone as a whole: the events go
back to review and rejoin the same case.

An approval admits only what the moderator saw: a decision names the case's version
(events joined so far) it was made on, and an approval or split is refused with
`CaseChanged` when events joined since. A rejection applies to every event in the case
(rejecting is the safe side).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson
import redis

from feedbackguard import audit, keys
from feedbackguard.decisions import Decision, json_time
from feedbackguard.pipeline import ledger, state
from feedbackguard.review import cases, moderation

Action = Literal["approve", "reject", "split"]
ACTIONS: Final[dict[str, Action]] = {"approve": "approve", "reject": "reject", "split": "split"}
OVER_BUDGET: Final = "review.over_budget"
"""The reason code of events given the safe default for lack of review capacity."""
BUDGET_ACTOR: Final = "budget"
"""Who decides a case the team cannot reach in time (`review.budget`)."""
DECIDED_KEEP_S: Final = 8 * 86400
"""How long moderators' case actions are counted (decided per day, per week)."""


class CaseError(Exception):
    """A case action that cannot be done; the message says why."""


class CaseBusy(CaseError):
    """Another moderator holds the case's lease."""


class CaseChanged(CaseError):
    """Events joined the case since the moderator looked at it."""


@dataclass
class CaseAction:
    """One decision on a case, as kept for undo and reopen."""

    action_id: str
    case_id: str
    actor: str
    action: str
    """approve, reject, split, or over_budget (the safe default)."""
    at: float
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    note: str = ""
    undone: bool = False


def load_action(r: redis.Redis[bytes], namespace: str, action_id: str) -> CaseAction | None:
    raw = r.get(keys.case_action(namespace, action_id))
    return CaseAction(**orjson.loads(raw)) if raw else None


def _keep(pipe: Any, namespace: str, action: CaseAction, keep_s: float) -> None:
    pipe.set(
        keys.case_action(namespace, action.action_id),
        orjson.dumps(asdict(action)),
        ex=max(1, int(keep_s)),
    )


def decide(
    records: state.Records,
    namespace: str,
    case_id: str,
    actor: str,
    action: Action,
    *,
    keep_s: float,
    approve_ids: Collection[str] = (),
    approve_accounts: Collection[str] = (),
    seen_version: int | None = None,
    note: str = "",
) -> CaseAction:
    """Decide every event of an open case in one action (see the module docstring).

    `split` approves the events in `approve_ids` and those of `approve_accounts` and
    rejects the others (approvals are named, so what the moderator did not see is
    rejected). A case given the safe default is reopened first (its events
    go back to review and are decided now: an approval reaches the store then). The
    action record is kept `keep_s` seconds (the undo window)."""
    r = records.r
    with state.locked(r, namespace):
        case = cases.get(r, namespace, case_id)
        if case is None:
            raise CaseError(f"no case {case_id}")
        if case.holder not in (None, actor):
            raise CaseBusy(f"case {case_id} is claimed by {case.holder}")
        if not case.open and case.over_budget:
            _reopen(records, namespace, case_id, actor, note)
            case = cases.get(r, namespace, case_id)
            assert case is not None
        elif action != "reject" and seen_version is not None and case.version != seen_version:
            raise CaseChanged(
                f"case {case_id} changed since it was shown ({case.version - seen_version} "
                "events joined): look at it again"
            )
        ids = cases.members(r, namespace, case_id)
        if not ids:
            raise CaseError(f"case {case_id} has nothing waiting for review")
        raws = ledger.load_raw(r, namespace, ids)
        decided_at = json_time(datetime.now(UTC))
        chosen = set(approve_ids)
        changes: list[state.Change] = []
        approved: list[str] = []
        rejected: list[str] = []
        for event_id, raw in zip(ids, raws, strict=True):
            if raw is None or raw.status != "review":
                continue
            account, received = _who_and_when(raw)
            rejects = action == "reject" or (
                action == "split" and event_id not in chosen and account not in approve_accounts
            )
            (rejected if rejects else approved).append(event_id)
            status = "rejected" if rejects else "admitted"
            changes.append(
                moderation.decided(raw, status, actor, decided_at, note, account, received)
            )
        done = CaseAction(
            action_id=str(r.incr(keys.case_action_seq(namespace))),
            case_id=case_id,
            actor=actor,
            action=action,
            at=time.time(),
            approved=approved,
            rejected=rejected,
            note=note,
        )
        pipe = moderation.applied(records, namespace, changes, actor)
        _keep(pipe, namespace, done, keep_s)
        decided_key = keys.case_decided(namespace)
        pipe.zadd(decided_key, {done.action_id: done.at})
        pipe.zremrangebyscore(decided_key, "-inf", done.at - DECIDED_KEEP_S)
        _audit(pipe, namespace, f"review.case.{action}", done)
        pipe.execute()
    return done


def _who_and_when(raw: ledger.RawRecord) -> tuple[str, float]:
    """The account and received_at of a record's event, read from its JSON (what
    feedbackguard wrote itself: no model needed)."""
    event = orjson.loads(raw.event_json)
    return str(event["account_id"]), datetime.fromisoformat(event["received_at"]).timestamp()


def _audit(pipe: Any, namespace: str, what: str, done: CaseAction) -> None:
    audit.record(
        pipe,
        done.actor,
        what,
        namespace=namespace,
        case=done.case_id,
        case_action=done.action_id,
        approved=done.approved,
        rejected=done.rejected,
        note=done.note,
    )


@dataclass
class Undone:
    """What an undo sent back to review, and what it could not (decided again since,
    or past the undo window)."""

    case_id: str
    undone: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def undo(
    records: state.Records,
    namespace: str,
    action_id: str,
    actor: str,
    window_s: float,
    note: str = "",
) -> Undone:
    """Undo `actor`'s case action of less than `window_s` ago as a whole: its events
    go back to review and rejoin their case (an undone approval is quarantined in the
    store, and restored if approved again)."""
    r = records.r
    by = state.MODERATOR_PREFIX + actor
    with state.locked(r, namespace):
        done = load_action(r, namespace, action_id)
        if done is None or done.actor != actor or done.undone or done.action == "over_budget":
            raise CaseError(f"no action {action_id} of {actor} to undo")
        if time.time() - done.at > window_s:
            raise CaseError(f"action {action_id} is older than the undo window")
        ids = [*done.approved, *done.rejected]
        now = datetime.now(UTC)
        allowed = moderation.undoable(by, now, window_s)
        result = Undone(case_id=done.case_id)
        changes: list[state.Change] = []
        for event_id, raw in zip(ids, ledger.load_raw(r, namespace, ids), strict=True):
            found = moderation.back_to_review(raw, by, allowed, now, note)
            if found is None:
                result.refused.append(event_id)
            else:
                changes.append(found._replace(case=done.case_id))
                result.undone.append(event_id)
        pipe = moderation.applied(records, namespace, changes, actor)
        done.undone = True
        _keep(pipe, namespace, done, max(1.0, window_s - (time.time() - done.at)))
        pipe.zrem(keys.case_decided(namespace), done.action_id)
        audit.record(
            pipe,
            actor,
            "review.case.undo",
            namespace=namespace,
            case=done.case_id,
            case_action=action_id,
            event_ids=result.undone,
            note=note,
        )
        pipe.execute()
    return result


def over_budget_action(case_id: str) -> str:
    """The id of the action that gave a case the safe default."""
    return f"over-{case_id}"


def default(
    records: state.Records,
    namespace: str,
    case_ids: Sequence[str],
    detail: str,
) -> int:
    """Give cases the safe default for lack of review capacity: their events are
    rejected (never admitted) with reason `review.over_budget`, decided by `budget`;
    a moderator can reopen them while their records last. Cases a moderator holds are
    left to them. Returns the events decided."""
    total = 0
    for case_id in case_ids:
        with state.locked(records.r, namespace):  # per case: never held for long
            total += _default(records, namespace, case_id, detail)
    return total


def _default(records: state.Records, namespace: str, case_id: str, detail: str) -> int:
    r = records.r
    if cases.holders(r, namespace, [case_id])[0] is not None:
        return 0
    decided_at = json_time(datetime.now(UTC))
    reason = {"code": OVER_BUDGET, "detail": detail, "score": 0.0, "group": ""}
    changes: list[state.Change] = []
    for raw in ledger.load_raw(r, namespace, cases.members(r, namespace, case_id)):
        if raw is None or raw.status != "review":
            continue
        last = raw.trail[-1]
        final = {
            **last,
            "status": "rejected",
            "decided_at": decided_at,
            "decided_by": BUDGET_ACTOR,
            "reasons": [*last["reasons"], reason],
        }
        account, received = _who_and_when(raw)
        changes.append(state.change(raw.then(final), account_id=account, received_at=received))
    if not changes:
        return 0
    done = CaseAction(
        action_id=over_budget_action(case_id),
        case_id=case_id,
        actor=BUDGET_ACTOR,
        action="over_budget",
        at=time.time(),
        rejected=[c.event_id for c in changes],
        note=detail,
    )
    ttl = records.policies.current().policy.outcome_ttl_s
    pipe = r.pipeline(transaction=True)
    state.apply(pipe, namespace, changes, ttl_s=ttl)
    _keep(pipe, namespace, done, ttl)
    pipe.zadd(keys.case_over(namespace), {case_id: done.at})
    _audit(pipe, namespace, "review.case.over_budget", done)
    pipe.execute()
    return len(changes)


def reopen(
    records: state.Records, namespace: str, case_id: str, actor: str, note: str = ""
) -> list[str]:
    """Send a case given the safe default back to review (its events rejoin it);
    returns the events reopened."""
    with state.locked(records.r, namespace):
        return _reopen(records, namespace, case_id, actor, note)


def _reopen(
    records: state.Records, namespace: str, case_id: str, actor: str, note: str
) -> list[str]:
    r = records.r
    done = load_action(r, namespace, over_budget_action(case_id))
    if done is None:
        raise CaseError(f"case {case_id} was not given the safe default (or is forgotten)")
    now = datetime.now(UTC)
    by = state.MODERATOR_PREFIX + actor

    def by_budget(decision: Decision) -> bool:
        return decision.status == "rejected" and decision.decided_by == BUDGET_ACTOR

    changes: list[state.Change] = []
    for raw in ledger.load_raw(r, namespace, done.rejected):
        found = moderation.back_to_review(raw, by, by_budget, now, note)
        if found is not None:
            changes.append(found._replace(case=case_id))
    pipe = moderation.applied(records, namespace, changes, actor)
    pipe.zrem(keys.case_over(namespace), case_id)
    audit.record(
        pipe,
        actor,
        "review.case.reopen",
        namespace=namespace,
        case=case_id,
        event_ids=[c.event_id for c in changes],
        note=note,
    )
    pipe.execute()
    return [c.event_id for c in changes]
