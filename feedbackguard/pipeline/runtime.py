"""One worker process's long-lived objects: settings, Redis clients, store, pipeline.

RQ imports job functions by name in the worker process; they reach their
dependencies through `current()`, built once per process from the environment.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache

import redis

from feedbackguard.checks.base import Analyser, Check
from feedbackguard.checks.disagreement import ConsensusCheck, ModelCheck
from feedbackguard.checks.graph import GraphAnalyser, GraphCheck
from feedbackguard.checks.known_triggers import TriggerCheck
from feedbackguard.checks.lists import ListCheck
from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.connection import connect, connect_rq
from feedbackguard.consistency.analyser import ConsistencyAnalyser
from feedbackguard.consistency.ingest import consistency_checks
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import AnalysisMode, Settings
from feedbackguard.store import Store


def default_checks() -> list[Check]:
    """The checks every batch goes through, in order."""
    return [
        ListCheck(),  # admin deny lists first: cheap and certain
        RateLimitCheck(),
        GraphCheck(),
        TriggerCheck(),
        ModelCheck(),
        *consistency_checks(),  # lockdown, recent, kNN, suspected triggers, outliers
        ConsensusCheck(),  # last: records support where something speaks against
    ]


def default_analysers(mode: AnalysisMode = "incremental") -> list[Analyser]:
    """The periodic analyses over each namespace's recent window, in order; `mode` is
    the `analysis` setting ("off": none)."""
    if mode == "off":
        return []
    incremental = mode == "incremental"
    return [GraphAnalyser(incremental=incremental), ConsistencyAnalyser(incremental=incremental)]


@dataclass
class Runtime:
    """`redis` is the data plane (maybe a Redis Cluster); `rq_redis` RQ's control plane,
    when it is another server (`connection.connect_rq`)."""

    settings: Settings
    redis: redis.Redis[bytes]
    pipeline: Pipeline
    consumer: str
    rq_redis: redis.Redis[bytes] | None = None

    @property
    def control(self) -> redis.Redis[bytes]:
        """The client RQ's queues, workers and the pump lock use."""
        return self.redis if self.rq_redis is None else self.rq_redis

    @classmethod
    def build(cls, settings: Settings, *, create_store: bool = False) -> Runtime:
        """The objects of one process. `create_store` makes the store and its signing
        key when the deployment has none yet (`Store.from_settings`): for the
        commands that create their home (worker, serve, demo)."""
        r = connect(settings)
        rq = connect_rq(settings, r)
        pipeline = Pipeline(
            r=r,
            store=Store.from_settings(settings, r, create=create_store),
            policies=PolicyStore(r, cache_s=settings.policy_cache_s),
            checks=default_checks(),
            analysers=default_analysers(settings.analysis),
            batch_size=settings.batch_size,
            claim_idle_ms=settings.claim_idle_ms,
            release_batch=settings.release_batch,
        )
        consumer = f"{socket.gethostname()}:{os.getpid()}"
        return cls(
            settings=settings,
            redis=r,
            pipeline=pipeline,
            consumer=consumer,
            rq_redis=None if rq is r else rq,
        )

    def close(self) -> None:
        self.pipeline.store.close()
        self.redis.close()
        if self.rq_redis is not None:
            self.rq_redis.close()


@cache
def current() -> Runtime:
    return Runtime.build(Settings())
