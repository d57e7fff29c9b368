"""The circuit breaker that spares requests a Redis timeout already paid once."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.exceptions import RedisClusterException

from feedbackguard.embedded import EmbeddedRedisError

REDIS_UNAVAILABLE = (redis.RedisError, RedisClusterException, OSError, EmbeddedRedisError)
"""The errors that open the breaker: Redis failing (a Redis Cluster's client raises
some that are not `RedisError`: no node reachable, a slot not covered), or the
embedded one not starting."""


class CircuitBreaker:
    """Closed: try Redis. After a failure, open for `cooldown_s`: do not try, spool.
    Then one trial request goes through (half-open); success closes it again.
    `clock` is the time source (monotonic seconds; tests pass a fake one)."""

    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._open_until > 0.0

    def allow(self) -> bool:
        if self._open_until == 0.0:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.cooldown_s  # one trial per cooldown period
        return True

    def success(self) -> None:
        self._open_until = 0.0

    def failure(self) -> None:
        self._open_until = self._clock() + self.cooldown_s
