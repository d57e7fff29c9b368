"""A label's disagreement with other opinions on the same item.

* `ConsensusCheck` (`consistency.consensus`): the value against the weighted
  consensus of other accounts on the same item. Weights follow the Community Notes
  choice (docs/architecture.md): an account the graph analysis found risky counts
  1 - risk, a young account `young_weight`, so a swarm's many voices do not become the
  consensus that honest feedback is then judged against; an account's reputation
  (`feedbackguard.accounts.reliability`) scales its voice too.
* `ModelCheck` (`consistency.model`): a label or correction against a confident
  model output, more suspicious from a young account.

Known backdoor triggers (`trigger.known`) are `checks.known_triggers`. Each check is
switched and tuned by the policy's `consistency` section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from feedbackguard import accounts, keys, scripts
from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.checks.known_triggers import TRIGGER
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.graph.window import value_key

CONSENSUS = "consistency.consensus"
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


class ConsensusCheck:
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
        pipe = ctx.redis.pipeline(transaction=False)
        scripts.run(pipe, "consensus_read", item_keys)
        pipe.hmget(keys.graph_risk(ctx.namespace), names)
        found, raw_risk = pipe.execute()
        votes = {
            item: {flat[k].decode(): float(flat[k + 1]) for k in range(0, len(flat), 2)}
            for item, flat in zip(items, found, strict=True)
        }
        risk = {
            name: orjson.loads(raw)["risk"] if raw else 0.0
            for name, raw in zip(names, raw_risk, strict=True)
        }
        prior = ctx.policy.consistency.reputation
        trust = accounts.reliability(ctx.redis, ctx.namespace, names, prior) / (
            prior.agree / (prior.agree + prior.disagree)
        )
        standing = dict(zip(names, trust.tolist(), strict=True))
        young = _young(events, ctx.policy.ratelimit.new_account_age_s)
        findings: Findings = {}
        added: dict[tuple[str, str], float] = {}
        for index, event in enumerate(events):
            counts = votes[event.item_id]
            mine = value_key(event.value)
            total = sum(counts.values())
            if total > 0:
                confidence = total / (total + policy.prior_weight)
                disagreement = 1.0 - counts.get(mine, 0.0) / total
                if confidence >= policy.min_confidence and disagreement > 0.5:
                    score = policy.max_score * confidence * disagreement
                    score = round(
                        min(1.0, score + (policy.young_bonus if young[index] else 0.0)), 4
                    )
                    findings[index] = [
                        Reason(
                            CONSENSUS,
                            f"{disagreement:.0%} of {total:.1f} weighted votes on this item "
                            "gave another value",
                            score,
                        )
                    ]
            if any(
                r.code in NO_VOTE or r.code.startswith("rate_limited.")
                for r in ctx.earlier.get(index, ())
            ):
                continue  # refused feedback is not a voice
            weight = (
                (policy.young_weight if young[index] else 1.0)
                * (1.0 - risk[event.account_id])
                * standing[event.account_id]
            )
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
