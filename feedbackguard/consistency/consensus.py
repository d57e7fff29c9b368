"""The item consensus judged again at analysis, with what the analysis has learnt.

At ingest (`checks.disagreement.ConsensusCheck`) a vote is weighed with what was
known when it came: a brigade whose members the graph had not yet found counts in
full, and honest dissenters are then judged against it. Each consistency run, every
waiting (pending or in-review) label of the recent window is judged again against
the other accounts' votes in the window (rejected and quarantined feedback is no
voice), each weighed with today's independence, graph risk, reputation and age
(`checks.disagreement.vote_weights`). The event's `consistency.consensus` and
`consistency.support` reasons are replaced, or withdrawn (score 0) when they no
longer hold, so a brigade that lost its weight stops flagging its dissenters and
stops backing its own members.

Support is recorded only where something speaks against the event (a disagreement
or suspicion reason, a risky account, a verdict of this run): elsewhere it changes
no decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

import numpy as np

from feedbackguard import keys
from feedbackguard.checks.base import AnalysisContext, Reason
from feedbackguard.checks.disagreement import CONSENSUS, SUPPORT, judge, vote_weights
from feedbackguard.consistency.recent import Recent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.decide import AGAINST, SUSPICION

WAITING = ("pending", "review")
NO_VOICE = ("rejected", "quarantined")
_SPEAKS_AGAINST = (AGAINST | SUSPICION) - {CONSENSUS}


def recheck(
    ctx: AnalysisContext, window: Recent, status: np.ndarray, flagged: Collection[int]
) -> dict[int, list[Reason]]:
    """Window index -> the consensus reasons that changed for that waiting event
    (`flagged`: indices this run already found something against)."""
    policy = ctx.policy.consistency
    waiting = np.flatnonzero(np.isin(status, WAITING)).tolist()
    if not policy.consensus.enabled or not waiting:
        return {}
    names = sorted(set(window.accounts))
    weights = vote_weights(ctx.redis, ctx.namespace, names, policy)
    risky = {
        name
        for name, raw in zip(
            names, ctx.redis.hmget(keys.graph_risk(ctx.namespace), names), strict=True
        )
        if raw is not None
    }
    age = window.time - window.created
    young = np.nan_to_num(age, nan=np.inf) < ctx.policy.ratelimit.new_account_age_s
    item_votes: dict[str, dict[str, float]] = defaultdict(dict)
    own_votes: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for i in np.flatnonzero(~np.isin(status, NO_VOICE)).tolist():
        account, item, value = window.accounts[i], window.items[i], window.values[i]
        weight = weights[account] * (policy.consensus.young_weight if young[i] else 1.0)
        votes = item_votes[item]
        votes[value] = votes.get(value, 0.0) + weight
        mine = own_votes[(item, account)]
        mine[value] = mine.get(value, 0.0) + weight
    ids = [window.event_ids[i] for i in waiting]
    current = [
        {} if raw is None else {str(r["code"]): float(r["score"]) for r in raw.trail[-1]["reasons"]}
        for raw in ledger.load_raw(ctx.redis, ctx.namespace, ids)
    ]
    out: dict[int, list[Reason]] = {}
    for i, now in zip(waiting, current, strict=True):
        account, item = window.accounts[i], window.items[i]
        mine = own_votes.get((item, account), {})
        others = {v: max(0.0, w - mine.get(v, 0.0)) for v, w in item_votes[item].items()}
        against, support = judge(others, window.values[i], policy.consensus, bool(young[i]))
        speaks = i in flagged or account in risky or any(code in _SPEAKS_AGAINST for code in now)
        changed = [
            *_change(now, CONSENSUS, against, "the consensus no longer disagrees"),
            *_change(now, SUPPORT, support if speaks else None, "no independent support"),
        ]
        if changed:
            out[i] = changed
    return out


def _change(now: dict[str, float], code: str, found: Reason | None, gone: str) -> list[Reason]:
    """The reason to merge for `code`: `found` if its score is new, a withdrawal
    (score 0) if the event carries `code` and it no longer holds, else nothing."""
    if found is not None:
        return [] if now.get(code) == found.score else [found]
    return [Reason(code, gone, 0.0)] if code in now else []
