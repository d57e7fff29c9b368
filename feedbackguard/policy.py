"""The policy: every limit, threshold and window that decides what feedback is admitted.

Defaults live in `config/policy.toml`. Deployments store versions in Redis
(`feedbackguard.policystore`); this module is only the validated shape.
"""

from __future__ import annotations

import re
import tomllib
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from feedbackguard.defaults import config_path
from feedbackguard.events import Kind
from feedbackguard.graph.params import GraphPolicy

Scope = Literal["account", "ip", "subnet", "device", "item", "kind"]


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


class RateLimit(_Section):
    """`limit` events per `window_s` for each distinct value of `scope` (a GCRA)."""

    scope: Scope
    limit: int = Field(gt=0)
    window_s: float = Field(gt=0)
    new_account_limit: int | None = Field(None, gt=0)
    kinds: tuple[Kind, ...] | None = None

    @property
    def name(self) -> str:
        """Stable identifier of this limit (used in Redis keys)."""
        kinds = "+".join(sorted(self.kinds)) if self.kinds else "all"
        return f"{self.scope}:{kinds}:{self.window_s:g}"


class RateLimits(_Section):
    new_account_age_s: float = Field(7 * 86400, ge=0)
    limits: tuple[RateLimit, ...] = ()

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
    young_bonus: float = Field(0.2, ge=0, le=1)
    ttl_s: float = Field(30 * 86400, gt=0)


class ModelDisagreement(_Section):
    """A label or correction against a confident model output."""

    enabled: bool = True
    min_confidence: float = Field(0.9, ge=0, le=1)
    max_score: float = Field(0.2, ge=0, le=1)
    young_bonus: float = Field(0.3, ge=0, le=1)


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
    """Known backdoor triggers: text patterns (regular expressions) and feature rules."""

    score: float = Field(0.95, ge=0, le=1)
    text: tuple[str, ...] = ()
    features: tuple[FeatureRule, ...] = ()

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        for pattern in self.text:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"text trigger {pattern!r} is not a valid regex: {exc}") from exc
        return self


class Reputation(_Section):
    """Beta prior of an account's agreement with final outcomes (pseudo-counts)."""

    agree: float = Field(2.0, gt=0)
    disagree: float = Field(2.0, gt=0)


class Consistency(_Section):
    reputation: Reputation = Reputation()
    consensus: Consensus = Consensus()
    model: ModelDisagreement = ModelDisagreement()
    triggers: Triggers = Triggers()


class Policy(_Section):
    probation_s: float = Field(6 * 3600, ge=0)
    outcome_ttl_s: float = Field(30 * 86400, gt=0)
    thresholds: Thresholds = Thresholds()
    ratelimit: RateLimits = RateLimits()
    analysis: Analysis = Analysis()
    graph: Graph = Graph()
    consistency: Consistency = Consistency()

    @classmethod
    def default(cls) -> Policy:
        with config_path("policy.toml").open("rb") as fh:
            return cls.model_validate(tomllib.load(fh))
