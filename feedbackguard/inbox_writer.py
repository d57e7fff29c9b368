"""The one writer of the inbox streams `fg:{ns}:inbox`.

Every event enters an inbox through lua/inbox_add.lua, whoever sends it: capture
(`InboxWriter`, its hand-packed fast path), the spool's replay and the tools that
feed recorded events (`append`: replay, benchmarks, tests). Each entry carries the
field `e`, the event's JSON, and `u` = "1" when an earlier copy of the event may have
landed (a write that failed after it was sent); pipeline/inbox.py reads them back
through the consumer group. The script appends, in order, what fits under the
inbox's cap and reports what it left out; the stream is never trimmed (trimming would
silently drop unprocessed events). Each write also names its namespace in
`fg:namespaces`. Nothing here imports Flask: the worker side uses it too.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis
from redis.exceptions import RedisClusterException

from feedbackguard import keys, scripts
from feedbackguard.connection import is_cluster
from feedbackguard.events import FeedbackEvent

FIELD = b"e"
"""The entry field holding the event's JSON."""
UNSURE = b"u"
"""The entry field set on a copy whose first copy may already be in the inbox."""
SCRIPT = "inbox_add"
UNCAPPED = 2**53
"""The cap of writers that wait for room themselves (replay of recorded events)."""


def script_args(cap: int, unsure: bool, raws: Sequence[bytes]) -> list[int | bytes]:
    """lua/inbox_add.lua's arguments: the cap, the event field, the flag field, the events."""
    return [cap, FIELD, UNSURE if unsure else b"", *raws]


def queue_add(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    raws: Sequence[bytes],
    *,
    cap: int,
    unsure: bool = False,
) -> None:
    """Queue on `pipe` the append of `raws` (events' JSON) under `cap`, then the
    namespace's registration; the script's reply is [appended, length after]."""
    scripts.run(pipe, SCRIPT, [keys.inbox(namespace)], script_args(cap, unsure, raws))
    pipe.sadd(keys.namespaces(), namespace)


def append(pipe: redis.client.Pipeline[bytes], events: Iterable[FeedbackEvent]) -> None:
    """Queue on `pipe` the append of events, in order and uncapped (the caller waits
    for room); one script call per run of one namespace. The caller executes."""
    for namespace, run in itertools.groupby(events, key=lambda event: event.namespace):
        queue_add(pipe, namespace, [event.to_json() for event in run], cap=UNCAPPED)


# -- capture's fast path -------------------------------------------------------------


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _args(*args: bytes) -> bytes:
    return b"".join(map(_bulk, args))


def _as_bytes(arg: int | bytes) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


class UnsureWriteError(redis.ConnectionError):  # type: ignore[misc]
    """A write failed after it was sent: its events may or may not have landed."""


@dataclass(frozen=True)
class Written:
    """What one write did: the events left out because their inbox was full, and the
    longest inbox length seen afterwards."""

    refused: list[tuple[str, bytes]]
    longest: int


class Writer(Protocol):
    """What capture writes its events with (`writer_for`)."""

    def write(self, events: list[tuple[str, bytes]]) -> Written: ...

    def close(self) -> None: ...


def writer_for(client: redis.Redis[bytes], cap: int) -> Writer:
    """The writer for `client`: the hand-packed `InboxWriter` on a plain Redis, the
    `ClusterInboxWriter` on a Redis Cluster."""
    return ClusterInboxWriter(client, cap) if is_cluster(client) else InboxWriter(client, cap)


def _replies(groups: dict[str, list[bytes]], replies: Sequence[Any]) -> Written:
    """What a write did, from each namespace's [appended, length] script reply."""
    refused: list[tuple[str, bytes]] = []
    longest = 0
    for (namespace, raws), reply in zip(groups.items(), replies, strict=True):
        appended, length = cast(list[int], reply)
        refused += [(namespace, raw) for raw in raws[appended:]]
        longest = max(longest, int(length))
    return Written(refused, longest)


def _grouped(events: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    groups: dict[str, list[bytes]] = {}
    for namespace, raw in events:
        groups.setdefault(namespace, []).append(raw)
    return groups


class ClusterInboxWriter:
    """`InboxWriter`'s contract on a Redis Cluster, through redis-py's cluster pipeline:
    `queue_add` per namespace, which redis-py sends to each inbox's node (and the
    `fg:namespaces` SADD to its own), each node's commands in one round trip. Any
    failure once sending began is unsure: some nodes may have taken their events."""

    def __init__(self, client: redis.Redis[bytes], cap: int) -> None:
        self._client = client
        self._cap = cap

    def write(self, events: list[tuple[str, bytes]]) -> Written:
        groups = _grouped(events)
        pipe = self._client.pipeline(transaction=False)
        for namespace, raws in groups.items():
            queue_add(pipe, namespace, raws, cap=self._cap)
        try:
            replies = pipe.execute()
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise UnsureWriteError(f"events sent, outcome unknown: {exc}") from exc
        return _replies(groups, replies[::2])

    def close(self) -> None:
        """Nothing of its own to close: the client is its owner's."""


class InboxWriter:
    """Appends events to their inboxes with commands packed by hand on a per-thread
    connection, under each inbox's cap.

    This is the hot path of capture. redis-py's pipeline spends ~10 us of CPU per
    command on packing, callbacks and pool checkout (~12 us with its observability
    hooks); the commands here are, per namespace, `EVALSHA <inbox_add> 1 fg:{ns}:inbox
    <cap> e "" <json>...` (`queue_add`'s script call) and `SADD fg:namespaces ns`, their
    fixed parts packed once per namespace, sent with one sendall and answered with one
    read. What does not fit under the cap comes back to the caller, which spools or
    refuses it. Connections come from the client's pool settings (timeouts, no
    retries, auth, db), one per thread and per process (a forked worker opens its own).
    """

    def __init__(self, client: redis.Redis[bytes], cap: int) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()
        self._source = scripts.source(SCRIPT)
        self._head = _args(b"EVALSHA", scripts.sha(SCRIPT).encode(), b"1")
        self._tail = _args(*map(_as_bytes, script_args(cap, False, ())))
        self._key: dict[str, bytes] = {}
        self._sadd: dict[str, bytes] = {}

    def _prefixes(self, namespace: str) -> tuple[bytes, bytes]:
        key = self._key.get(namespace)
        if key is None:
            key = self._key[namespace] = _bulk(keys.inbox(namespace).encode())
            self._sadd[namespace] = b"*3\r\n" + _args(
                b"SADD", keys.namespaces().encode(), namespace.encode()
            )
        return key, self._sadd[namespace]

    def _connection(self) -> Any:
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) != pid:
            local.pid = pid
            local.conn = self._pool.connection_class(**self._pool.connection_kwargs)
        return local.conn

    def write(self, events: list[tuple[str, bytes]]) -> Written:
        """Send every event (one script call and one SADD per namespace) in one round
        trip. Raises on any failure after dropping the connection: UnsureWriteError
        once the events were sent (some may have landed), else the error itself."""
        groups = _grouped(events)
        conn = self._connection()
        try:
            conn.connect()  # a no-op when connected; failing here, nothing was sent
        except BaseException:
            conn.disconnect()
            raise
        try:
            replies = self._exchange(conn, groups)
            missing = [ns for ns, reply in replies.items() if reply is None]
            if missing:  # the server lost its scripts (restart, SCRIPT FLUSH): load, resend
                conn.send_command("SCRIPT", "LOAD", self._source, check_health=False)
                conn.read_response()
                replies.update(self._exchange(conn, {ns: groups[ns] for ns in missing}))
        except (redis.RedisError, OSError) as exc:
            conn.disconnect()
            raise UnsureWriteError(f"events sent, outcome unknown: {exc}") from exc
        except BaseException:
            conn.disconnect()
            raise
        return _replies(groups, [replies[namespace] for namespace in groups])

    def _exchange(self, conn: Any, groups: dict[str, list[bytes]]) -> dict[str, Any]:
        """One round trip for `groups`; each namespace's script reply, None if NOSCRIPT."""
        chunks: list[bytes] = []
        for namespace, raws in groups.items():
            key, sadd = self._prefixes(namespace)
            chunks += (b"*%d\r\n" % (7 + len(raws)), self._head, key, self._tail)
            for raw in raws:
                chunks += (b"$%d\r\n" % len(raw), raw, b"\r\n")
            chunks.append(sadd)
        conn.send_packed_command([b"".join(chunks)], check_health=False)
        replies: dict[str, Any] = {}
        for namespace in groups:
            try:
                replies[namespace] = conn.read_response()
            except redis.exceptions.NoScriptError:
                replies[namespace] = None
            conn.read_response()  # SADD
        return replies

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.disconnect()
