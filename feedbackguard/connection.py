"""Redis clients: the data plane (a server, a Redis Cluster, or the embedded server when
none is configured) and RQ's control plane.

Two planes, because RQ does not run on a Redis Cluster (its job keys cross slots):

* the **data plane** (`FEEDBACKGUARD_REDIS_URL`) holds inboxes, records, status sets,
  rate limits, consensus, the graph window, the review queue, policy and audit. A URL
  with the scheme `redis+cluster://` (or `rediss+cluster://` for TLS) names a seed node
  of a Redis Cluster, and `connect` returns redis-py's `RedisCluster` for it; any
  other URL returns a plain `redis.Redis`. Each Lua script and MULTI touches one slot
  (`feedbackguard/keys.py`), so the two clients are interchangeable for our code.
* the **control plane** (`FEEDBACKGUARD_RQ_REDIS_URL`) holds RQ's job queues and the
  pump lock. It defaults to the data plane when that is not a cluster, and must name a
  plain Redis when it is.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

from feedbackguard import legacy
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.settings import Settings

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes naming a Redis Cluster, and the scheme redis-py's parser takes instead."""


class ControlPlaneError(ValueError):
    """The data plane is a Redis Cluster and no plain Redis is configured for RQ."""


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, starting the embedded server when there is none."""
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.home).start()


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def is_cluster(r: Any) -> bool:
    """Is `r` (a client or a pipeline) on a Redis Cluster?"""
    return isinstance(r, RedisCluster)


def client_from_url(url: str, **options: Any) -> redis.Redis[bytes]:
    """A bytes-mode client for `url`: a `RedisCluster` for a cluster URL (typed as
    `redis.Redis`: it offers the same single-slot commands), else a `redis.Redis`.
    `options` go to the client (timeouts, retry)."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    if plain is None:
        return redis.Redis.from_url(url, **options)
    client: redis.Redis[bytes] = RedisCluster.from_url(plain + sep + rest, **options)
    return client


_migrated: set[str] = set()


def connect(settings: Settings, *, timeout_s: float | None = None) -> redis.Redis[bytes]:
    """The data plane's client (bytes mode: RQ and the stream code both want raw bytes).
    The first connection of a process to a URL moves product-wide keys from their
    pre-cluster names (`legacy.migrate`: at most three EXISTS when there is nothing
    to move)."""
    url = redis_url(settings)
    client = client_from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
    )
    if url not in _migrated:
        legacy.migrate(client)
        _migrated.add(url)
    return client


def connect_rq(settings: Settings, data: redis.Redis[bytes]) -> redis.Redis[bytes]:
    """RQ's client: `rq_redis_url` when set, else `data` itself (the data plane's
    client), which must then not be a cluster."""
    if settings.rq_redis_url:
        if is_cluster_url(settings.rq_redis_url):
            raise ControlPlaneError(
                "FEEDBACKGUARD_RQ_REDIS_URL must name a plain Redis: RQ does not run on "
                "a Redis Cluster"
            )
        return redis.Redis.from_url(settings.rq_redis_url, health_check_interval=30)
    if is_cluster(data):
        raise ControlPlaneError(
            "FEEDBACKGUARD_REDIS_URL names a Redis Cluster: set FEEDBACKGUARD_RQ_REDIS_URL "
            "to a plain Redis for RQ's job queues (RQ does not run on a cluster)"
        )
    return data
