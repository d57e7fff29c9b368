"""The policy: every limit, threshold and window that decides what feedback is admitted.

Defaults live in `config/policy.toml`. Deployments store versions in Redis
(`feedbackguard.policy.store`); this module is only the validated shape.
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any, Literal, Protocol, Self

import re2
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from feedbackguard.defaults import config_path
from feedbackguard.events import Kind
from feedbackguard.graph.params import GraphPolicy

Scope = Literal["account", "ip", "subnet", "device", "item", "kind"]

# Bounds on the policy's size: every list is checked on each worker batch, so an
# unbounded policy is a denial of service by configuration (documented in policy.toml).
MAX_POLICY_BYTES = 256 * 1024
"""The largest policy accepted, serialised as compact JSON."""
MAX_RATE_LIMITS = 100
MAX_TEXT_TRIGGERS = 200
MAX_TRIGGER_CHARS = 1000
MAX_FEATURE_RULES = 200
MAX_TRIGGER_SCAN_BYTES = 64 * 1024
MAX_REVIEW_NAMESPACES = 1000

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported by the ValueError

TriggerPattern = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TRIGGER_CHARS)]


class PolicyTooLarge(ValueError):
    """A policy (or a proposed one) past `MAX_POLICY_BYTES` once serialised."""


def check_size(data: Any, limit: int = MAX_POLICY_BYTES) -> None:
    """Raise `PolicyTooLarge` naming the limit when `data` (a policy or its plain
    JSON form) serialises to more than `limit` bytes."""
    # The standard library's encoder for plain data: orjson refuses integers past 64 bits.
    raw = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    if len(raw) > limit:
        raise PolicyTooLarge(
            f"policy is {len(raw)} bytes serialised; the limit is {limit} bytes (MAX_POLICY_BYTES)"
        )


class TextMatch(Protocol):
    def group(self, index: int = 0, /) -> str: ...


class TextPattern(Protocol):
    """What a compiled text trigger offers (an RE2 regex)."""

    def search(self, text: str, /) -> TextMatch | None: ...


def compile_trigger(pattern: str) -> TextPattern:
    """A text trigger compiled by RE2: linear time in the text, whatever the pattern
    (a backtracking engine takes exponential time on e.g. `(a+)+$` and attacker text).
    Raises `ValueError` naming the pattern when RE2 cannot compile it (backreferences,
    lookaround)."""
    try:
        compiled: TextPattern = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        why = exc.args[0] if exc.args else exc
        why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise ValueError(
            f"text trigger {pattern!r} is not a valid regex for RE2 "
            f"(no backreferences or lookaround): {why}"
        ) from exc
    return compiled


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Section):
    review: float = Field(0.5, ge=0.0, le=1.0)
    reject: float = Field(0.9, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.review > self.reject:
            raise ValueError("review threshold must not exceed reject threshold")
        return self


class Decide(_Section):
    """How suspicion (who sent feedback, from where, with whom) and harm (what
    admitting it would change) make a decision (`feedbackguard.pipeline.decide`).

    Harm of a label: its disagreement with independent evidence (the kNN reference, a
    confident model, the item's consensus weighted by trust and independence), less
    the independent consensus that backs it; of a report: the `reports.*` reasons.
    """

    wrong_harm: float = Field(0.5, gt=0, le=1)
    suspect: float = Field(0.5, gt=0, le=1)
    contested_support: float = Field(0.3, gt=0, le=1)


class RateLimit(_Section):
    """`limit` events per `window_s` for each distinct value of `scope` (a GCRA)."""

    scope: Scope
    limit: int = Field(gt=0)
    window_s: float = Field(gt=0)
    new_account_limit: int | None = Field(None, gt=0)
    kinds: tuple[Kind, ...] | None = Field(None, max_length=8)

    @property
    def name(self) -> str:
        """Stable identifier of this limit (used in Redis keys)."""
        kinds = "+".join(sorted(self.kinds)) if self.kinds else "all"
        return f"{self.scope}:{kinds}:{self.window_s:g}"


class RateLimits(_Section):
    new_account_age_s: float = Field(7 * 86400, ge=0)
    limits: tuple[RateLimit, ...] = Field((), max_length=MAX_RATE_LIMITS)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        names = [limit.name for limit in self.limits]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rate limits must differ in scope, kinds or window: {twice}")
        return self


class Analysis(_Section):
    """When the periodic analysers run, in event time.

    They run once the namespace's clock has moved `interval_s` past the last run; no
    pending item is released before an analysis run has seen the end of its probation,
    and `replay` holds its input back while analysis lags more than `max_lag_s`.
    """

    interval_s: float = Field(300.0, gt=0)
    max_lag_s: float = Field(3600.0, gt=0)


class Graph(_Section):
    """The account graph: which events the periodic graph analysis sees, how its
    findings reach decisions, and which accounts seed trust propagation."""

    enabled: bool = True
    window_s: float = Field(7 * 86400, gt=0)
    bucket_s: float = Field(3600, gt=0)
    min_risk: float = Field(0.3, ge=0, le=1)
    seed_min_age_s: float = Field(180 * 86400, ge=0)
    seed_min_events: int = Field(3, ge=1)
    seed_max: int = Field(500, ge=0)
    detect: GraphPolicy = GraphPolicy()


class Consensus(_Section):
    """Feedback against the weighted consensus of other accounts on the same item."""

    enabled: bool = True
    prior_weight: float = Field(3.0, gt=0)
    min_confidence: float = Field(0.6, ge=0, le=1)
    max_score: float = Field(0.35, ge=0, le=1)
    young_weight: float = Field(0.2, ge=0, le=1)
    young_bonus: float = Field(0.0, ge=0, le=1)
    support_min_weight: float = Field(2.0, gt=0)
    ttl_s: float = Field(30 * 86400, gt=0)


class ModelDisagreement(_Section):
    """A label or correction against a confident model output."""

    enabled: bool = True
    min_confidence: float = Field(0.9, ge=0, le=1)
    max_score: float = Field(0.2, ge=0, le=1)
    young_bonus: float = Field(0.0, ge=0, le=1)


class FeatureRule(_Section):
    """Features at `indices` all within [low, high] (a missing bound is open): a known
    trigger pattern."""

    name: str = Field(min_length=1, max_length=200)
    indices: tuple[int, ...] = Field(min_length=1, max_length=4096)
    low: float | None = Field(None, allow_inf_nan=False)
    high: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if any(i < 0 for i in self.indices):
            raise ValueError("feature indices must be >= 0")
        if self.low is None and self.high is None:
            raise ValueError("a feature rule needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


class Triggers(_Section):
    """Known backdoor triggers: text patterns (RE2 regular expressions, matched against
    the first `scan_bytes` of each event's text) and feature rules."""

    score: float = Field(0.95, ge=0, le=1)
    text: tuple[TriggerPattern, ...] = Field((), max_length=MAX_TEXT_TRIGGERS)
    features: tuple[FeatureRule, ...] = Field((), max_length=MAX_FEATURE_RULES)
    scan_bytes: int = Field(8192, ge=1, le=MAX_TRIGGER_SCAN_BYTES)

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        for pattern in self.text:
            compile_trigger(pattern)
        return self


class Reputation(_Section):
    """Beta prior of an account's agreement with final outcomes (pseudo-counts)."""

    agree: float = Field(2.0, gt=0)
    disagree: float = Field(2.0, gt=0)


# --- consistency layer: kNN, discovery, outliers, drift ---
class RecentWindow(_Section):
    """The bounded window of recent label feedback (with features) the consistency
    analyser works on, and how often its heavier parts run (event time)."""

    max_events: int = Field(20_000, ge=100, le=1_000_000)
    every_s: float = Field(1800.0, gt=0)
    # Wider feature vectors are kept without their features (bounds the window's memory).
    max_features: int = Field(1024, ge=0, le=4096)


class Knn(_Section):
    """A label against the labels of its k nearest admitted neighbours (features)."""

    enabled: bool = True
    k: int = Field(10, ge=1, le=200)
    min_disagreement: float = Field(0.7, ge=0.5, le=1)
    max_score: float = Field(0.6, ge=0, le=1)
    reference_max: int = Field(20_000, ge=10, le=1_000_000)
    min_reference: int = Field(30, ge=1)


class Discovery(_Section):
    """Suspected backdoor triggers: features extreme far more often in feedback that
    flips the model's confident label to one value than elsewhere, from few accounts
    or a short time."""

    enabled: bool = True
    min_confidence: float = Field(0.8, ge=0, le=1)
    min_events: int = Field(15, ge=2)
    quantile: float = Field(0.95, gt=0.5, lt=1)
    min_support: float = Field(0.6, gt=0, le=1)
    max_base_rate: float = Field(0.02, ge=0, le=1)
    max_p_value: float = Field(1e-6, gt=0, le=1)
    max_features: int = Field(16, ge=1, le=4096)
    max_accounts_share: float = Field(0.2, gt=0, le=1)
    short_window_s: float = Field(86400.0, gt=0)
    score: float = Field(0.7, ge=0, le=1)


class Outliers(_Section):
    """IsolationForest over per-account behaviour in the recent window, refit each run."""

    enabled: bool = True
    min_accounts: int = Field(50, ge=10)
    contamination: float = Field(0.02, gt=0, le=0.5)
    score: float = Field(0.25, ge=0, le=1)
    seed: int = 0


class Drift(_Section):
    """Admitted (or pending) label distribution of the last `recent_s` against the
    `reference_s` before it: PSI and a chi-square test, per namespace and per item."""

    enabled: bool = True
    recent_s: float = Field(86400.0, gt=0)
    reference_s: float = Field(6 * 86400.0, gt=0)
    min_events: int = Field(200, ge=10)
    min_item_events: int = Field(30, ge=5)
    psi_alert: float = Field(0.25, gt=0)
    max_p_value: float = Field(1e-4, gt=0, le=1)
    lockdown: bool = False


class Unreliable(_Section):
    """Accounts whose recent feedback is mostly disputed (by the kNN neighbours or a
    confident model): a Beta posterior of agreement at most `max_agreement` over at
    least `min_events` events marks all their waiting and admitted window events."""

    enabled: bool = True
    min_events: int = Field(5, ge=1)
    max_agreement: float = Field(0.5, ge=0, le=1)
    score: float = Field(0.5, ge=0, le=1)


class Consistency(_Section):
    reputation: Reputation = Reputation()
    consensus: Consensus = Consensus()
    model: ModelDisagreement = ModelDisagreement()
    triggers: Triggers = Triggers()
    recent: RecentWindow = RecentWindow()
    knn: Knn = Knn()
    discovery: Discovery = Discovery()
    outliers: Outliers = Outliers()
    drift: Drift = Drift()
    unreliable: Unreliable = Unreliable()
    lockdown: bool = True
    # `store export`: no account contributes more than this share of any label or item.
    export_max_share: float | None = Field(0.1, gt=0, le=1)


class Review(_Section):
    """The review team's capacity, in cases a day (`review.budget`): `cases_per_day`
    for every namespace, or its entry in `namespaces`; 0 means no limit (every case
    waits for a moderator). Cases the team cannot reach, in triage order, before their
    oldest event's probation would have ended get the safe default: rejected with
    reason `review.over_budget` (a moderator can still reopen and decide them)."""

    cases_per_day: float = Field(0.0, ge=0)
    namespaces: dict[str, float] = Field(default_factory=dict, max_length=MAX_REVIEW_NAMESPACES)

    @model_validator(mode="after")
    def _non_negative(self) -> Self:
        if any(n < 0 for n in self.namespaces.values()):
            raise ValueError("review.namespaces: cases per day must be >= 0")
        return self

    def capacity(self, namespace: str) -> float:
        """Cases a day the team decides in `namespace` (0: no limit)."""
        return self.namespaces.get(namespace, self.cases_per_day)


class Policy(_Section):
    probation_s: float = Field(6 * 3600, ge=0)
    outcome_ttl_s: float = Field(30 * 86400, gt=0)
    clock_skew_s: float = Field(60, ge=0)
    thresholds: Thresholds = Thresholds()
    decide: Decide = Decide()
    ratelimit: RateLimits = RateLimits()
    analysis: Analysis = Analysis()
    graph: Graph = Graph()
    consistency: Consistency = Consistency()
    review: Review = Review()

    @model_validator(mode="after")
    def _skew_within_ttl(self) -> Self:
        # Otherwise every unsure spooled copy would be held (pipeline.ingest_batch).
        if self.clock_skew_s >= self.outcome_ttl_s:
            raise ValueError("clock_skew_s must be less than outcome_ttl_s")
        return self

    @classmethod
    def default(cls) -> Policy:
        with config_path("policy.toml").open("rb") as fh:
            return cls.model_validate(tomllib.load(fh))
