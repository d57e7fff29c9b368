"""Discovery of suspected backdoor triggers (`trigger.suspected`).

A backdoor is taught by feedback that pairs a fixed pattern in the input (a few
pixels set to maximum, a token) with one target label the model would not give. So
among the recent feedback that *flips* the model's confident label to a value `v`,
look for features that are extreme (above the baseline's `quantile`, or below its
`1 - quantile`) far more often than in the rest of the feedback:

1. per feature, support in the flips to `v` and base rate elsewhere; keep those with
   support >= `min_support` whose count is improbable under the base rate (binomial
   tail, vectorised with scipy) — at most `max_features` of them;
2. the pattern is all of them at once; it must be rare elsewhere (base rate <=
   `max_base_rate`), carried by >= `min_events` flips (p <= `max_p_value`), and
   concentrated: on few accounts (<= `max_accounts_share` of the window's) or in a
   short time (<= `short_window_s`).

A pattern found is kept in Redis with its evidence (support, base rate, p-value,
accounts, span), audited when first seen, matched at ingest by `SuspectedTriggerCheck`
and against the window by the analyser (only events giving the target value match).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import orjson
import redis
from pydantic import BaseModel, ConfigDict
from scipy import stats

from feedbackguard import audit, keys
from feedbackguard.consistency.recent import Recent
from feedbackguard.policy import Discovery

CODE = "trigger.suspected"
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class SuspectedTrigger(BaseModel):
    """A discovered pattern: features `above` their threshold (and `below`), given the
    value `value` (a value key) against the model. The rest is evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: str
    label: str
    width: int
    above: dict[int, float]
    below: dict[int, float]
    events: int
    support: float
    base_rate: float
    p_value: float
    accounts: int
    account_share: float
    span_s: float
    found_at: float

    def describe(self) -> str:
        parts = [f"x[{i}] > {t:g}" for i, t in sorted(self.above.items())]
        parts += [f"x[{i}] < {t:g}" for i, t in sorted(self.below.items())]
        return (
            f"{' and '.join(parts)} -> {self.label!r} ({self.events} flips of a confident "
            f"model, {self.support:.0%} of them vs {self.base_rate:.1%} elsewhere, "
            f"{self.accounts} accounts, over {self.span_s / 3600:.1f} h)"
        )

    def matches(self, features: FloatArray, values: Sequence[str]) -> BoolArray:
        """Rows (all of width `width`) carrying the pattern and the target value."""
        if len(features) == 0:
            return np.zeros(0, dtype=bool)
        hit: BoolArray = np.asarray(np.asarray(values, dtype=np.str_) == self.value)
        for index, threshold in self.above.items():
            hit &= features[:, index] > threshold
        for index, threshold in self.below.items():
            hit &= features[:, index] < threshold
        return hit


def load(r: redis.Redis[bytes], namespace: str) -> list[SuspectedTrigger]:
    return [
        SuspectedTrigger.model_validate_json(raw)
        for raw in r.hvals(keys.suspected_triggers(namespace))
    ]


def save(
    r: redis.Redis[bytes], namespace: str, found: Sequence[SuspectedTrigger], actor: str
) -> list[SuspectedTrigger]:
    """Keep the patterns; audit the new ones. Returns the new ones."""
    if not found:
        return []
    known = set(k.decode() for k in r.hkeys(keys.suspected_triggers(namespace)))
    fresh = [t for t in found if t.name not in known]
    pipe = r.pipeline(transaction=True)
    pipe.hset(
        keys.suspected_triggers(namespace), mapping={t.name: t.model_dump_json() for t in found}
    )
    for trigger in fresh:
        audit.record(  # the audit log has a slot of its own: before the MULTI
            r,
            actor,
            "trigger.suspected",
            namespace=namespace,
            trigger=orjson.loads(trigger.model_dump_json()),
        )
    pipe.execute()
    return fresh


def discover(
    window: Recent,
    rows: npt.NDArray[np.int64],
    features: FloatArray,
    policy: Discovery,
    now: float,
) -> list[SuspectedTrigger]:
    """Patterns in `features` (the window's rows `rows`) per the module's method."""
    if len(rows) == 0:
        return []
    values = np.asarray(window.values, dtype=np.str_)[rows]
    flips: BoolArray = np.asarray(window.flips(policy.min_confidence)[rows], dtype=bool)
    # The baseline: feedback that agrees with the model (or had none to agree with);
    # feedback against an unsure model is neither baseline nor evidence.
    agree: BoolArray = np.array(
        [window.model[i] in (None, window.values[i]) for i in rows.tolist()], dtype=bool
    )
    base = features[agree]
    if len(base) < policy.min_events:
        return []
    high = np.quantile(base, policy.quantile, axis=0)
    low = np.quantile(base, 1.0 - policy.quantile, axis=0)
    extreme = np.concatenate([features > high, features < low], axis=1)
    base_rate = (extreme[agree].sum(axis=0) + 1.0) / (len(base) + 2.0)
    accounts = np.asarray(window.accounts, dtype=np.str_)[rows]
    times = window.time[rows]
    all_accounts = len(set(window.accounts))
    width = features.shape[1]
    found: list[SuspectedTrigger] = []
    targets, counts = np.unique(values[flips], return_counts=True)
    for target in targets[counts >= policy.min_events].tolist():
        group = flips & (values == target)
        n = int(group.sum())
        hits = extreme[group].sum(axis=0)
        support = hits / n
        p = stats.binom.sf(hits - 1, n, base_rate)
        candidates = np.flatnonzero((support >= policy.min_support) & (p <= policy.max_p_value))
        if len(candidates) == 0:
            continue
        order = np.lexsort((base_rate[candidates], -support[candidates]))
        chosen = candidates[order[: policy.max_features]]
        carried: BoolArray = np.asarray(extreme[:, chosen].all(axis=1), dtype=bool)
        matched = group & carried
        count = int(matched.sum())
        pattern_base = float((carried[agree].sum() + 1.0) / (len(base) + 2.0))
        if count < policy.min_events or pattern_base > policy.max_base_rate:
            continue
        p_pattern = float(stats.binom.sf(count - 1, n, pattern_base))
        if p_pattern > policy.max_p_value:
            continue
        who = set(accounts[matched].tolist())
        share = len(who) / max(all_accounts, 1)
        span = float(times[matched].max() - times[matched].min())
        if share > policy.max_accounts_share and span > policy.short_window_s:
            continue
        above = {int(j): float(high[j]) for j in chosen.tolist() if j < width}
        below = {int(j - width): float(low[j - width]) for j in chosen.tolist() if j >= width}
        digest = hashlib.sha256(orjson.dumps([target, sorted(above), sorted(below)])).hexdigest()[
            :12
        ]
        label = window.labels[int(rows[np.flatnonzero(values == target)[0]])]
        found.append(
            SuspectedTrigger(
                name=f"suspected-{digest}",
                value=target,
                label=label,
                width=width,
                above=above,
                below=below,
                events=count,
                support=round(count / n, 4),
                base_rate=round(pattern_base, 6),
                p_value=p_pattern,
                accounts=len(who),
                account_share=round(share, 4),
                span_s=span,
                found_at=now,
            )
        )
    return found
