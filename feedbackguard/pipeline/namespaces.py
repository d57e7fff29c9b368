"""What a namespace looks like now: counters, queue depths, lag, lockdown. Read by the
admin API and by the /metrics collector (one pipelined round trip per namespace)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
import redis

from feedbackguard import keys


@dataclass(frozen=True)
class NamespaceInfo:
    namespace: str
    stats: dict[str, int]
    inbox: int
    pending: int
    review: int
    clock: float
    lag_s: float | None
    lockdown: dict[str, str] | None


def known(r: redis.Redis[bytes]) -> list[str]:
    return sorted(m.decode() for m in r.smembers(keys.namespaces()))


def info(r: redis.Redis[bytes], namespace: str) -> NamespaceInfo:
    inbox = keys.inbox(namespace)
    with r.pipeline(transaction=False) as p:
        p.hgetall(keys.stats(namespace))
        p.xlen(inbox)
        p.xrange(inbox, "-", "+", count=1)
        p.zcard(keys.pending(namespace))
        p.zcard(keys.review(namespace))
        p.zscore(keys.clock(namespace), b"t")
        p.get(keys.lockdown(namespace))
        stats, depth, oldest, pending, review, clock, locked = p.execute()
    lag = None
    if oldest:
        first_ms = int(oldest[0][0].split(b"-")[0])
        lag = max(0.0, time.time() - first_ms / 1000.0)
    return NamespaceInfo(
        namespace=namespace,
        stats={k.decode(): int(v) for k, v in stats.items()},
        inbox=int(depth),
        pending=int(pending),
        review=int(review),
        clock=float(clock or 0.0),
        lag_s=lag,
        lockdown=dict(orjson.loads(locked)) if locked else None,
    )
