"""A label's disagreement with other opinions on the same item.

* `ConsensusCheck` (`consistency.consensus`, `consistency.support`): the value
  against the weighted consensus of other accounts on the same item. Weights follow
  the Community Notes choice (docs/architecture.md): accounts that act as one count
  together (`graph.independence`: a cohort of N about as one), an account the graph
  analysis found risky counts 1 - risk, a young account `young_weight`, so a
  brigade's many voices do not become the consensus that honest feedback is then
  judged against; an account's reputation (`feedbackguard.accounts.reliability`)
  scales its voice too. Where the consensus backs a value that something else speaks
  against (the model, its neighbours, the graph), the support is recorded: the
  decision weighs it against that disagreement (`pipeline.decide`). The analysis
  judges waiting events again with the weights it has learnt since
  (`consistency.consensus`).
* `ModelCheck` (`consistency.model`): a label or correction against a confident
  model output, more suspicious from a young account.

Known backdoor triggers (`trigger.known`) are `checks.known_triggers`. Each check is
switched and tuned by the policy's `consistency` section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import redis

from feedbackguard import accounts, keys, scripts
from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.checks.known_triggers import TRIGGER
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.graph import independence
from feedbackguard.graph.window import value_key
from feedbackguard.policy import Consensus, Consistency

CONSENSUS = "consistency.consensus"
SUPPORT = "consistency.support"
MODEL = "consistency.model"
# Earlier reasons that make an event no vote in the consensus.
NO_VOTE = frozenset({"account.blocked", TRIGGER})


def _young(events: Sequence[FeedbackEvent], age_s: float) -> np.ndarray:
    """Per event: the account was created less than `age_s` before the event."""
    return np.array(
        [
            e.account_created_at is not None
            and (e.received_at - e.account_created_at).total_seconds() < age_s
            for e in events
        ],
        dtype=bool,
    )


def _refused(reasons: Sequence[Reason]) -> bool:
    return any(r.code in NO_VOTE or r.code.startswith("rate_limited.") for r in reasons)


def vote_weights(
    r: redis.Redis[bytes], namespace: str, names: Sequence[str], policy: Consistency
) -> dict[str, float]:
    """Each account's voice in an item's consensus, before its age is counted: its
    independence (a cohort of N that acts as one counts about as one,
    `graph.independence`), times 1 - the graph's risk for it, times its reputation
    relative to the prior's (`accounts.reliability`)."""
    if not names:
        return {}
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.graph_risk(namespace), list(names))
    raw_risk = pipe.execute()[0]
    risk = [orjson.loads(raw)["risk"] if raw else 0.0 for raw in raw_risk]
    prior = policy.reputation
    standing = accounts.reliability(r, namespace, names, prior) / (
        prior.agree / (prior.agree + prior.disagree)
    )
    independent = independence.weights(r, namespace, names)
    return {
        name: apart * (1.0 - risky) * float(trust)
        for name, apart, risky, trust in zip(
            names, independent, risk, standing.tolist(), strict=True
        )
    }


def judge(
    counts: Mapping[str, float], mine: str, policy: Consensus, young: bool
) -> tuple[Reason | None, Reason | None]:
    """A value against the weighted votes `counts` (value key -> weight) of other
    accounts on its item: (`consistency.consensus` when most of a confident consensus
    gave another value, `consistency.support` when most of the votes gave this one).

    Confidence is weight / (weight + `prior_weight`). Disagreement needs
    `min_confidence` (one or two voices accuse no one) and scores `max_score` x
    confidence x the share against (plus `young_bonus` for a young dissenter).
    Support needs `support_min_weight` (agreement among accounts, not one other
    account) and scores confidence x the share for: how much of a label's
    disagreement with the model or its neighbours independent agreement outweighs
    (`pipeline.decide`).
    """
    total = sum(counts.values())
    if total <= 0:
        return None, None
    confidence = total / (total + policy.prior_weight)
    agreement = counts.get(mine, 0.0) / total
    if agreement < 0.5 and confidence >= policy.min_confidence:
        disagreement = 1.0 - agreement
        score = policy.max_score * confidence * disagreement
        score = round(min(1.0, score + (policy.young_bonus if young else 0.0)), 2)
        detail = f"{disagreement:.0%} of {total:.1f} weighted votes on this item gave another value"
        return Reason(CONSENSUS, detail, score), None
    if agreement > 0.5 and total >= policy.support_min_weight:
        detail = (
            f"{agreement:.0%} of {total:.1f} independent weighted votes on this item "
            "gave this value"
        )
        return None, Reason(SUPPORT, detail, round(confidence * agreement, 2))
    return None, None


class ConsensusCheck:
    """Runs after the checks that can speak against an event (the model, kNN,
    suspected triggers, the graph's cached findings), so that the independent
    consensus backing an event is recorded where something speaks against it."""

    name = "consensus"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.consensus
        if not policy.enabled or not events:
            return {}
        items = sorted({e.item_id for e in events})
        names = sorted({e.account_id for e in events})
        item_keys = [keys.consensus(ctx.namespace, item) for item in items]
        # One script call for every item's votes: redis-py packs and parses a pipeline
        # of one HGETALL per item command by command (docs/benchmarks.md).
        found = scripts.run(ctx.redis, "consensus_read", item_keys)
        votes = {
            item: {flat[k].decode(): float(flat[k + 1]) for k in range(0, len(flat), 2)}
            for item, flat in zip(items, found, strict=True)
        }
        weights = vote_weights(ctx.redis, ctx.namespace, names, ctx.policy.consistency)
        young = _young(events, ctx.policy.ratelimit.new_account_age_s)
        findings: Findings = {}
        added: dict[tuple[str, str], float] = {}
        for index, event in enumerate(events):
            counts = votes[event.item_id]
            mine = value_key(event.value)
            earlier = ctx.earlier.get(index, ())
            against, support = judge(counts, mine, policy, bool(young[index]))
            if against is not None:
                findings[index] = [against]
            elif support is not None and earlier:
                findings[index] = [support]
            if _refused(earlier):
                continue  # refused feedback is not a voice
            weight = (policy.young_weight if young[index] else 1.0) * weights[event.account_id]
            counts[mine] = counts.get(mine, 0.0) + weight
            added[(event.item_id, mine)] = added.get((event.item_id, mine), 0.0) + weight
        per_item: dict[str, list[tuple[str, float]]] = {item: [] for item in items}
        for (item, value), weight in added.items():
            per_item[item].append((value, weight))
        args: list[Any] = [int(policy.ttl_s)]
        for item in items:
            args.append(len(per_item[item]))
            for value, weight in per_item[item]:
                args.extend((value, repr(weight)))
        scripts.run(ctx.redis, "consensus_add", item_keys, args)
        return findings


class ModelCheck:
    name = "model"

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.consistency.model
        if not policy.enabled or not events:
            return {}
        confidence = np.array(
            [
                e.model_output.confidence
                if e.model_output is not None
                and e.kind in LABEL_KINDS
                and value_key(e.model_output.label) != value_key(e.value)
                else 0.0
                for e in events
            ]
        )
        flagged = confidence >= max(policy.min_confidence, 1e-9)
        if not flagged.any():
            return {}
        span = max(1.0 - policy.min_confidence, 1e-9)
        strength = np.clip((confidence - policy.min_confidence) / span, 0.0, 1.0)
        young = _young(events, ctx.policy.ratelimit.new_account_age_s)
        score = 0.5 * policy.max_score + 0.5 * policy.max_score * strength
        score = np.minimum(1.0, score + np.where(young, policy.young_bonus, 0.0))
        findings: Findings = {}
        for index in np.flatnonzero(flagged).tolist():
            event = events[index]
            assert event.model_output is not None
            findings[index] = [
                Reason(
                    MODEL,
                    f"the model said {event.model_output.label!r} with confidence "
                    f"{event.model_output.confidence:.2f}"
                    + (" (young account)" if young[index] else ""),
                    round(float(score[index]), 4),
                )
            ]
        return findings
