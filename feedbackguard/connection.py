"""Redis clients: the configured server, or the embedded one when none is configured."""

from __future__ import annotations

import redis

from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.settings import Settings


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, starting the embedded server when there is none."""
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.home).start()


def connect(settings: Settings, *, timeout_s: float | None = None) -> redis.Redis[bytes]:
    """A bytes-mode client (RQ and the stream code both want raw bytes)."""
    return redis.Redis.from_url(
        redis_url(settings),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
