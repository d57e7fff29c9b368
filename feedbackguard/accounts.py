"""Accounts as feedbackguard knows them: what admins said (trusted, blocked), what
moderators decided about their feedback (the account's reputation), and what the last
graph analysis found.

Admin states are product-wide (an account id names the same person in every
namespace); moderation outcomes and graph findings are per namespace. The graph
analysis writes its findings here and reads its trust seeds from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import redis

from feedbackguard import audit, keys
from feedbackguard.policy import Reputation

State = Literal["trusted", "blocked"]


def _set_state(
    r: redis.Redis[bytes], account_id: str, state: State | None, actor: str, note: str
) -> None:
    # Audited first: the audit log has a slot of its own (audit.record).
    audit.record(r, actor, f"account.{state or 'cleared'}", account_id=account_id, note=note)
    if state is None:
        r.hdel(keys.account_states(), account_id)
    else:
        r.hset(keys.account_states(), account_id, state)


def trust(r: redis.Redis[bytes], account_id: str, actor: str, note: str = "") -> None:
    """Vouch for an account: a trust seed, and no graph reasons against it."""
    _set_state(r, account_id, "trusted", actor, note)


def block(r: redis.Redis[bytes], account_id: str, actor: str, note: str = "") -> None:
    """Reject every further event of the account (`account.blocked`)."""
    _set_state(r, account_id, "blocked", actor, note)


def untrust(r: redis.Redis[bytes], account_id: str, actor: str, note: str = "") -> None:
    if state(r, account_id) == "trusted":
        _set_state(r, account_id, None, actor, note)


def unblock(r: redis.Redis[bytes], account_id: str, actor: str, note: str = "") -> None:
    if state(r, account_id) == "blocked":
        _set_state(r, account_id, None, actor, note)


def state(r: redis.Redis[bytes], account_id: str) -> State | None:
    return states(r, [account_id])[0]


def states(r: redis.Redis[bytes], account_ids: Sequence[str]) -> list[State | None]:
    if not account_ids:
        return []
    return [_state(raw) for raw in r.hmget(keys.account_states(), list(account_ids))]


def _state(raw: bytes | None) -> State | None:
    if raw == b"trusted":
        return "trusted"
    if raw == b"blocked":
        return "blocked"
    return None


def all_states(r: redis.Redis[bytes]) -> dict[str, State]:
    out: dict[str, State] = {}
    for account, raw in r.hgetall(keys.account_states()).items():
        found = _state(raw)
        if found is not None:
            out[account.decode()] = found
    return out


def record_moderation(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    namespace: str,
    account_id: str,
    approved: bool,
    *,
    taken_back: bool = False,
) -> None:
    """Count a moderator's decision on one of the account's items, or take the count
    back (an undo). The one record of moderator outcomes: trust seeds for the graph
    and each account's reliability in the consensus are both read from it."""
    r.zincrby(keys.moderated(namespace, approved), -1 if taken_back else 1, account_id)


def reliability(
    r: redis.Redis[bytes], namespace: str, account_ids: Sequence[str], prior: Reputation
) -> npt.NDArray[np.float64]:
    """Each account's reputation: the posterior mean (Beta prior) of how often its
    feedback held up when a moderator judged it; the prior's mean when never judged.
    It weights the account's voice in the consensus."""
    if not account_ids:
        return np.empty(0)
    pipe = r.pipeline(transaction=False)
    pipe.zmscore(keys.moderated(namespace, True), list(account_ids))
    pipe.zmscore(keys.moderated(namespace, False), list(account_ids))
    approved, rejected = (
        np.array([s or 0.0 for s in scores], dtype=np.float64) for scores in pipe.execute()
    )
    return (prior.agree + approved) / (prior.agree + prior.disagree + approved + rejected)


def seeds(r: redis.Redis[bytes], namespace: str) -> tuple[list[str], list[str]]:
    """(trusted, rejected) seeds from admins and moderators: admin-trusted accounts
    and accounts moderators approved more often than rejected; admin-blocked ones
    and accounts moderators rejected more often than approved."""
    pipe = r.pipeline(transaction=False)
    pipe.zrange(keys.moderated(namespace, True), 0, -1, withscores=True)
    pipe.zrange(keys.moderated(namespace, False), 0, -1, withscores=True)
    approved_raw, rejected_raw = pipe.execute()
    approved = {a.decode(): s for a, s in approved_raw}
    rejected = {a.decode(): s for a, s in rejected_raw}
    trusted = {a for a, n in approved.items() if n > rejected.get(a, 0)}
    negative = {a for a, n in rejected.items() if n > approved.get(a, 0)}
    for account, found in all_states(r).items():
        (trusted if found == "trusted" else negative).add(account)
        (negative if found == "trusted" else trusted).discard(account)
    return sorted(trusted), sorted(negative)


def account_risk(r: redis.Redis[bytes], namespace: str, account_id: str) -> dict[str, Any] | None:
    """The account's findings of the last graph analysis: risk, reasons, clusters."""
    raw = r.hget(keys.graph_risk(namespace), account_id)
    return None if raw is None else dict(orjson.loads(raw))


def cluster(r: redis.Redis[bytes], namespace: str, cluster_id: str) -> dict[str, Any] | None:
    """A cluster's evidence of the last graph analysis: code, score, detail,
    members, items, timeline, stats."""
    raw = r.hget(keys.graph_clusters(namespace), cluster_id)
    return None if raw is None else dict(orjson.loads(raw))


def replace_findings(
    r: redis.Redis[bytes],
    namespace: str,
    risks: Iterable[tuple[str, dict[str, Any]]],
    clusters: Iterable[tuple[str, dict[str, Any]]],
) -> None:
    """Swap in a new analysis's findings at once (readers never see half of one)."""
    pipe = r.pipeline(transaction=True)
    for key, items in (
        (keys.graph_risk(namespace), risks),
        (keys.graph_clusters(namespace), clusters),
    ):
        staged = {name: orjson.dumps(value) for name, value in items}
        if staged:
            pipe.delete(key + ":next")
            pipe.hset(key + ":next", mapping=staged)
            pipe.execute_command("RENAME", key + ":next", key)  # pipe.rename: blocked on a cluster
        else:
            pipe.delete(key)
    pipe.execute()
