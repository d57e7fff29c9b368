"""Lua scripts, kept as resource files in `feedbackguard/lua/`.

Each runs with EVALSHA and is loaded into a server on first use (redis-py's Script).
On a Redis Cluster pipeline a script is queued as EVAL instead: redis-py refuses
EVALSHA and SCRIPT LOAD there (redis-py#2914), and a script missing on a node inside
MULTI would fail alone while the rest of the transaction commits. Every script's keys
are in one slot (`feedbackguard/keys.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import redis
from redis.cluster import ClusterPipeline
from redis.commands.core import Script

_scripts: dict[str, Script] = {}


@cache
def source(name: str) -> str:
    return (files("feedbackguard") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@cache
def sha(name: str) -> str:
    """The SHA1 EVALSHA names the script by (for callers that pack commands by hand)."""
    return hashlib.sha1(source(name).encode("utf-8"), usedforsecurity=False).hexdigest()


def run(
    r: redis.Redis[bytes] | redis.client.Pipeline[bytes],
    name: str,
    keys: Sequence[Any],
    args: Sequence[Any] = (),
) -> Any:
    """Run the named script on `r` (a client, or a pipeline to queue it on)."""
    if isinstance(r, ClusterPipeline):
        return r.execute_command("EVAL", source(name), len(keys), *keys, *args)
    found = _scripts.get(name)
    if found is None:
        found = _scripts[name] = Script(r, source(name))
    return found(keys=list(keys), args=list(args), client=r)
