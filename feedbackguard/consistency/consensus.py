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


class Votes:
    """The recent window's votes by item, each weighed with today's weights."""

    def __init__(self, ctx: AnalysisContext, window: Recent, status: np.ndarray) -> None:
        policy = ctx.policy.consistency
        self.window = window
        self.policy = policy.consensus
        names = sorted(set(window.accounts))
        weights = vote_weights(ctx.redis, ctx.namespace, names, policy)
        raw_risk = ctx.redis.hmget(keys.graph_risk(ctx.namespace), names) if names else []
        self.risky = {name for name, raw in zip(names, raw_risk, strict=True) if raw is not None}
        age = window.time - window.created
        self.young = np.nan_to_num(age, nan=np.inf) < ctx.policy.ratelimit.new_account_age_s
        self.items: dict[str, dict[str, float]] = defaultdict(dict)
        self.own: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for i in np.flatnonzero(~np.isin(status, NO_VOICE)).tolist():
            account, item, value = window.accounts[i], window.items[i], window.values[i]
            weight = weights[account] * (self.policy.young_weight if self.young[i] else 1.0)
            votes = self.items[item]
            votes[value] = votes.get(value, 0.0) + weight
            mine = self.own[(item, account)]
            mine[value] = mine.get(value, 0.0) + weight

    def judge(self, i: int) -> tuple[Reason | None, Reason | None]:
        """Window event `i` against the other accounts' votes on its item
        (`checks.disagreement.judge`)."""
        w = self.window
        mine = self.own.get((w.items[i], w.accounts[i]), {})
        others = {v: max(0.0, x - mine.get(v, 0.0)) for v, x in self.items[w.items[i]].items()}
        return judge(others, w.values[i], self.policy, bool(self.young[i]))

    def supported(self) -> np.ndarray:
        """Per window event: the other accounts' consensus backs its value."""
        return np.array([self.judge(i)[1] is not None for i in range(len(self.window))], bool)


def recheck(
    ctx: AnalysisContext, votes: Votes, status: np.ndarray, flagged: Collection[int]
) -> dict[int, list[Reason]]:
    """Window index -> the consensus reasons that changed for that waiting event
    (`flagged`: indices this run already found something against)."""
    waiting = np.flatnonzero(np.isin(status, WAITING)).tolist()
    if not ctx.policy.consistency.consensus.enabled or not waiting:
        return {}
    window = votes.window
    ids = [window.event_ids[i] for i in waiting]
    raws = ctx.redis.mget([keys.record(ctx.namespace, e) for e in ids])
    current = [{} if raw is None else ledger.last_reasons(raw) for raw in raws]
    out: dict[int, list[Reason]] = {}
    for i, now in zip(waiting, current, strict=True):
        against, support = votes.judge(i)
        speaks = (
            i in flagged
            or window.accounts[i] in votes.risky
            or any(code in _SPEAKS_AGAINST for code in now)
        )
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
