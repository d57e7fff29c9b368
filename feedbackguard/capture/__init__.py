"""Capture: the Flask extension that turns a product's feedback requests into events.

    guard = FeedbackGuard(app)                    # or guard.init_app(app) later

    @app.post("/tickets/<ticket_id>/feedback")
    @guard.feedback(kind="correction", account="g:user_id", item="view:ticket_id",
                    value="json:label", payload=lambda: {"text": load(...)})
    def feedback(ticket_id): ...

or, without touching the views, a route table in the Flask config:

    FEEDBACKGUARD_ROUTES = {"feedback": {"kind": "correction", "account": "g:user_id",
                                         "item": "view:ticket_id", "value": "json:label"}}

A field source is "json:a.b.0" (path in the request JSON), "view:name" (URL
variable), "g:name" (attribute of flask.g), "header:Name", "const:text", any other
value (a constant) or a callable taking no argument (called in the request context).

Before the view runs, the event is validated (pydantic, docs/architecture.md's event contract),
request context is added (client IP per `trusted_proxies`, device id, user agent,
server time, `Idempotency-Key` as event_id) and the event is appended to
`fg:{ns}:inbox` in one Redis round trip. Invalid feedback answers 422 naming the
field (or, with `invalid_feedback = "pass"`, is counted and the view runs as usual).
Capture never changes the product's own answer because of Redis: on a failure or
timeout the event goes to the local spool, a circuit breaker stops later requests
from paying the timeout again, and a background thread replays the spool once Redis
answers again.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import flask
import orjson
import pydantic
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from feedbackguard import keys, scripts
from feedbackguard.capture.spool import Spool, SpoolFullError
from feedbackguard.connection import redis_url
from feedbackguard.events import MAX_META_CHARS, FeedbackEvent, ModelOutput, Payload
from feedbackguard.pipeline.inbox import FIELD
from feedbackguard.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "feedbackguard"
ROUTES_KEY = "FEEDBACKGUARD_ROUTES"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FORWARDED_FOR_HEADER = "X-Forwarded-For"
INVALID_STATUS = 422
# A full inbox is logged at most this often per process (it can flap at the cap).
FULL_LOG_EVERY_S = 60.0
_MS = 1000.0
_INBOX_ADD = "inbox_add"

F = TypeVar("F", bound=Callable[..., Any])

# Spec keyword -> FeedbackEvent field.
SPEC_FIELDS: dict[str, str] = {
    "kind": "kind",
    "account": "account_id",
    "item": "item_id",
    "value": "value",
    "model_output": "model_output",
    "payload": "payload",
    "namespace": "namespace",
    "account_created_at": "account_created_at",
}
_ID_FIELDS = frozenset({"account_id", "item_id"})
_NESTED = {"payload": Payload.model_fields, "model_output": ModelOutput.model_fields}
# Pydantic error types that only say "not this member of the union": when a field
# has a more specific error, that one is reported instead.
_UNION_NOISE = ("_type", "_parsing")


# -- field sources ---------------------------------------------------------------

Getter = Callable[[flask.Request, Any], Any]
"""A compiled field source: (request, parsed JSON body) -> value or None."""


def _json_path(path: str) -> Getter:
    parts = [int(p) if p.isdigit() else p for p in path.split(".") if p]

    def get(request: flask.Request, node: Any) -> Any:
        for part in parts:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(node, dict):
                node = node.get(str(part))
            else:
                return None
        return node

    return get


def _view_arg(name: str) -> Getter:
    return lambda request, body: (request.view_args or {}).get(name)


def _g_attr(name: str) -> Getter:
    return lambda request, body: getattr(flask.g, name, None)


def _header(name: str) -> Getter:
    return lambda request, body: request.headers.get(name)


def _constant(value: Any) -> Getter:
    return lambda request, body: value


def _call(source: Callable[[], Any]) -> Getter:
    return lambda request, body: source()


_PREFIXES: dict[str, Callable[[str], Getter]] = {
    "json:": _json_path,
    "view:": _view_arg,
    "g:": _g_attr,
    "header:": _header,
    "const:": _constant,
}


def compile_source(source: Any) -> Getter:
    """Turn a field source (see the module docstring) into a getter, once, at
    registration, so a request only runs the pre-parsed lookups."""
    if callable(source):
        return _call(source)
    if isinstance(source, str):
        for prefix, make in _PREFIXES.items():
            if source.startswith(prefix):
                return make(source[len(prefix) :])
    return _constant(source)


@dataclass(frozen=True)
class FeedbackSpec:
    """Where each event field of one feedback endpoint comes from, pre-compiled."""

    getters: tuple[tuple[str, Getter], ...]
    reads_json: bool

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> FeedbackSpec:
        unknown = set(spec) - set(SPEC_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown feedback spec keys {sorted(unknown)}; expected {sorted(SPEC_FIELDS)}"
            )
        for required in ("kind", "account", "item", "value"):
            if required not in spec:
                raise ValueError(f"feedback spec needs a source for {required!r}")
        getters = tuple((SPEC_FIELDS[k], compile_source(v)) for k, v in spec.items())
        reads_json = any(isinstance(v, str) and v.startswith("json:") for v in spec.values())
        return cls(getters, reads_json)


# -- state -------------------------------------------------------------------------


@dataclass
class CaptureCounters:
    """Per-process counts. `invalid` counts refused feedback in both modes (in "pass"
    mode that is the dropped feedback); `dropped` counts valid events lost because
    Redis and the spool both refused them (spool full, disk error); `refused` counts
    events answered with a 503 because the inbox was full (`inbox_overflow = "reject"`)."""

    captured: int = 0
    spooled: int = 0
    invalid: int = 0
    dropped: int = 0
    replayed: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class CircuitBreaker:
    """Closed: try Redis. After a failure, open for `cooldown_s`: do not try, spool.
    Then one trial request goes through (half-open); success closes it again."""

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


def capture_client(settings: Settings) -> redis.Redis[bytes]:
    """A client that fails fast: `redis_timeout_ms` socket timeouts and no retries
    (redis-py >= 6 retries 3 times by default, which would triple the outage cost)."""
    timeout_s = settings.redis_timeout_ms / _MS
    return redis.Redis.from_url(
        redis_url(settings),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _args(*args: bytes) -> bytes:
    return b"".join(map(_bulk, args))


class UnsureWriteError(redis.ConnectionError):  # type: ignore[misc]
    """A write failed after it was sent: its events may or may not have landed."""


@dataclass(frozen=True)
class Written:
    """What one write did: the events left out because their inbox was full, and the
    longest inbox length seen afterwards."""

    refused: list[tuple[str, bytes]]
    longest: int


class InboxWriter:
    """Appends events to their inboxes with commands packed by hand on a per-thread
    connection, under each inbox's cap.

    This is the hot path of capture. redis-py's pipeline spends ~10 us of CPU per
    command on packing, callbacks and pool checkout (~12 us with its observability
    hooks); the commands here are, per namespace, `EVALSHA <inbox_add> 1 fg:{ns}:inbox
    <cap> e "" <json>...` (lua/inbox_add.lua: append what fits under the cap, atomically)
    and `SADD fg:namespaces ns`, their fixed parts packed once per namespace, sent with
    one sendall and answered with one read. The stream is never trimmed (trimming would
    silently drop unprocessed events); what does not fit comes back to capture, which
    spools or refuses it. Connections come from the client's pool settings (timeouts,
    no retries, auth, db), one per thread and per process (a forked worker opens its
    own).
    """

    def __init__(self, client: redis.Redis[bytes], cap: int) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()
        self._source = scripts.source(_INBOX_ADD)
        self._head = _args(b"EVALSHA", scripts.sha(_INBOX_ADD).encode(), b"1")
        self._tail = _args(str(cap).encode(), FIELD, b"")  # no flag field
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
        groups: dict[str, list[bytes]] = {}
        for namespace, raw in events:
            groups.setdefault(namespace, []).append(raw)
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
        refused: list[tuple[str, bytes]] = []
        longest = 0
        for namespace, reply in replies.items():
            appended, length = cast(list[int], reply)
            refused += [(namespace, raw) for raw in groups[namespace][appended:]]
            longest = max(longest, int(length))
        return Written(refused, longest)

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


class _Sender(Protocol):
    def send(self, namespace: str, raw: bytes) -> bool:
        """Queue or send one event; False when a full inbox refused it (answer 503)."""
        ...

    def close(self) -> None: ...


class Capture:
    """Everything capture needs for one app: settings, client, spool, breaker, counters."""

    def __init__(self, settings: Settings, routes: Mapping[str, Mapping[str, Any]]) -> None:
        self.settings = settings
        self.routes = {endpoint: FeedbackSpec.build(spec) for endpoint, spec in routes.items()}
        self.counters = CaptureCounters()
        self.breaker = CircuitBreaker(settings.breaker_cooldown_s)
        self.spool = Spool(settings.resolved_spool_path, settings.spool_max_bytes)
        self.client = capture_client(settings)
        self.pass_invalid = settings.invalid_feedback == "pass"
        self.trusted_proxies = settings.trusted_proxies
        self.writer = InboxWriter(self.client, settings.inbox_maxlen)
        # Open while an inbox is past `inbox_maxlen`: new events go to the overflow path.
        self.backpressure = CircuitBreaker(settings.breaker_cooldown_s)
        self.spool_overflow = settings.inbox_overflow == "spool"
        self._full_logged_at = -FULL_LOG_EVERY_S
        self._retrier = _SpoolRetrier(self)
        self.sender: _Sender = (
            _BufferedSender(self) if settings.capture_mode == "buffered" else _SyncSender(self)
        )

    # -- per request -----------------------------------------------------------

    def capture(self, spec: FeedbackSpec) -> flask.Response | None:
        """Validate and queue this request's event; a 422 response if it is refused."""
        self._retrier.ensure_started()
        try:
            event = FeedbackEvent.model_validate(self._fields(spec))
        except pydantic.ValidationError as exc:
            self.counters.invalid += 1
            return None if self.pass_invalid else invalid_response(exc)
        if not self.spool_overflow and not self.backpressure.allow():
            self.counters.refused += 1
            return full_response(self.settings.breaker_cooldown_s)
        try:
            if not self.sender.send(event.namespace, event.to_json()):
                return full_response(self.settings.breaker_cooldown_s)
        except Exception:  # docs/architecture.md invariant 3: never break the endpoint
            self.counters.dropped += 1
            log.exception("feedbackguard capture failed; event %s dropped", event.event_id)
        return None

    def _fields(self, spec: FeedbackSpec) -> dict[str, Any]:
        # One context-local lookup, not one per field.
        request: flask.Request = cast(Any, flask.request)._get_current_object()
        body = request.get_json(silent=True) if spec.reads_json else None
        fields: dict[str, Any] = {}
        for name, get in spec.getters:
            value = get(request, body)
            if value is None:
                continue
            if name in _ID_FIELDS and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            fields[name] = value
        fields["ip"] = client_ip(request, self.trusted_proxies)
        device = request.headers.get(self.settings.device_id_header) or request.cookies.get(
            self.settings.device_id_cookie
        )
        if device:
            fields["device_id"] = device[:MAX_META_CHARS]
        agent = request.headers.get("User-Agent")
        if agent:
            fields["user_agent"] = agent[:MAX_META_CHARS]
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None:
            fields["event_id"] = key
        return fields

    # -- delivery --------------------------------------------------------------

    def deliver(self, events: list[tuple[str, bytes]], *, can_refuse: bool = False) -> bool:
        """Append events to their inboxes in one round trip, or spool them. Events a
        full inbox leaves out are spooled too, unless `can_refuse` and the overflow
        policy is "reject": then False says the caller answers 503 instead."""
        if self.spool_overflow and not self.backpressure.allow():
            self.to_spool([raw for _, raw in events])  # replayed once workers catch up
            return True
        if not self.breaker.allow():
            self.to_spool([raw for _, raw in events])
            return True
        try:
            written = self.writer.write(events)
        except (redis.RedisError, OSError) as exc:
            self.breaker.failure()
            log.warning("feedbackguard: Redis unavailable (%s); spooling", exc)
            self.to_spool([raw for _, raw in events], unsure=isinstance(exc, UnsureWriteError))
            return True
        self.breaker.success()
        self.counters.captured += len(events) - len(written.refused)
        if not written.refused and written.longest < self.settings.inbox_maxlen:
            self.backpressure.success()
            return True
        self.backpressure.failure()
        now = time.monotonic()
        if now - self._full_logged_at >= FULL_LOG_EVERY_S:
            self._full_logged_at = now
            log.warning(
                "feedbackguard: inbox holds %d events (cap %d); workers are behind, "
                "new feedback is %s",
                written.longest,
                self.settings.inbox_maxlen,
                "spooled" if self.spool_overflow else "refused (503)",
            )
        if not written.refused:
            return True
        if can_refuse and not self.spool_overflow:
            self.counters.refused += len(written.refused)
            return False
        self.to_spool([raw for _, raw in written.refused])
        return True

    def to_spool(self, raws: list[bytes], *, unsure: bool = False) -> None:
        try:
            self.spool.append_many(raws, unsure=unsure)
        except (SpoolFullError, OSError):
            self.counters.dropped += len(raws)
            log.exception("feedbackguard: %d event(s) dropped: spool refused them", len(raws))
            return
        self.counters.spooled += len(raws)

    def replay_spool(self) -> int:
        """Replay the spool into the inbox now; the number of events sent."""
        result = self.spool.replay(
            self.client,
            cap=self.settings.inbox_maxlen,
            batch=self.settings.spool_replay_batch,
        )
        self.counters.replayed += result.replayed
        if result.full:  # the rest waits, and so do new events
            self.backpressure.failure()
        return result.replayed

    def close(self) -> None:
        self.sender.close()
        self._retrier.stop()
        self.writer.close()
        self.client.close()


class _SyncSender:
    """One pipelined round trip per request, before the view runs."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    def send(self, namespace: str, raw: bytes) -> bool:
        return self._capture.deliver([(namespace, raw)], can_refuse=True)

    def close(self) -> None:
        return None


class _BufferedSender:
    """Opt-in: events wait in memory; a per-process thread pipelines them every
    `buffer_flush_ms` (sooner once `buffer_max_events` wait) and at exit."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._flush_s = capture.settings.buffer_flush_ms / _MS
        self._max = capture.settings.buffer_max_events
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._pid = 0
        atexit.register(self.close)

    def send(self, namespace: str, raw: bytes) -> bool:
        if self._pid != os.getpid():
            self._start()
        self._queue.append((namespace, raw))
        if len(self._queue) >= self._max:
            self._wake.set()
        return True  # answered already: what a full inbox leaves out is spooled

    def _start(self) -> None:
        """(Re)start the flusher in this process (a forked worker has no threads)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._stopped.clear()
        threading.Thread(target=self._run, name="feedbackguard-flush", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch: list[tuple[str, bytes]] = []
            while self._queue and len(batch) < self._max:
                batch.append(self._queue.popleft())
            while batch:
                self._capture.deliver(batch)
                batch = []
                while self._queue and len(batch) < self._max:
                    batch.append(self._queue.popleft())

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        try:
            self.flush()
        except Exception:  # at exit nothing may raise
            log.exception("feedbackguard: final flush failed")


class _SpoolRetrier:
    """Per-process thread: every `spool_retry_s`, replay the spool if it has events."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._pid = 0
        self._stopped = threading.Event()

    def ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name="feedbackguard-spool", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self._capture.settings.spool_retry_s):
            self.retry_once()

    def retry_once(self) -> None:
        if not self._capture.spool.has_pending():
            return
        try:
            self._capture.replay_spool()
        except (redis.RedisError, OSError) as exc:
            log.info("feedbackguard: spool replay postponed (%s)", exc)
            self._capture.breaker.failure()
            return
        except Exception:  # a daemon thread must not die silently
            log.exception("feedbackguard: spool replay failed")
            return
        self._capture.breaker.success()

    def stop(self) -> None:
        self._stopped.set()


# -- request context ---------------------------------------------------------------


def client_ip(request: flask.Request, trusted_proxies: int) -> str | None:
    """The client address. With N trusted proxies, each appends the address it saw
    to X-Forwarded-For, so the client is the Nth entry from the right: entries left
    of it were written by the client and prove nothing. Without trusted proxies (or
    with fewer entries than proxies, a misconfiguration) the socket peer is used."""
    if trusted_proxies > 0:
        header = ",".join(request.headers.getlist(FORWARDED_FOR_HEADER))
        hops = [hop.strip() for hop in header.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies][:MAX_META_CHARS]
    return request.remote_addr


def invalid_response(exc: pydantic.ValidationError) -> flask.Response:
    """422 `{"error": "invalid_feedback", "fields": [{"field", "message"}]}`."""
    body = {"error": "invalid_feedback", "fields": invalid_fields(exc)}
    return flask.current_app.response_class(
        orjson.dumps(body), status=INVALID_STATUS, mimetype="application/json"
    )


def full_response(retry_after_s: float) -> flask.Response:
    """503 `{"error": "feedback_backlog"}` with Retry-After: the workers are behind."""
    response = flask.current_app.response_class(
        orjson.dumps({"error": "feedback_backlog"}), status=503, mimetype="application/json"
    )
    response.headers["Retry-After"] = str(math.ceil(retry_after_s))
    return response


def invalid_fields(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    """One entry per offending event field (nested ones as `payload.text`)."""
    by_field: dict[str, list[tuple[str, str]]] = {}
    for error in exc.errors(include_url=False):
        by_field.setdefault(_field_name(error["loc"]), []).append((error["type"], error["msg"]))
    out = []
    for name, errors in by_field.items():
        specific = [msg for kind, msg in errors if not kind.endswith(_UNION_NOISE)]
        messages = list(dict.fromkeys(specific or [msg for _, msg in errors]))
        out.append({"field": name, "message": "; ".join(messages)})
    return out


def _field_name(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "event"
    head = str(loc[0])
    nested = _NESTED.get(head)
    if nested is not None and len(loc) > 1 and isinstance(loc[1], str) and loc[1] in nested:
        return f"{head}.{loc[1]}"
    return head


# -- the extension -----------------------------------------------------------------


class FeedbackGuard:
    """The Flask extension. State lives in `app.extensions["feedbackguard"]` (a
    `Capture`), so one guard object may serve several apps."""

    def __init__(self, app: flask.Flask | None = None, *, settings: Settings | None = None) -> None:
        self._settings = settings
        self._app: flask.Flask | None = None
        self._captures: list[Capture] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask, *, settings: Settings | None = None) -> Capture:
        chosen = settings or self._settings or Settings.from_mapping(app.config)
        capture = Capture(chosen, app.config.get(ROUTES_KEY) or {})
        app.extensions[EXTENSION] = capture
        app.before_request(_route_table_hook)
        self._captures.append(capture)
        if self._app is None:
            self._app = app
        return capture

    def feedback(self, **spec: Any) -> Callable[[F], F]:
        """Decorator marking a view as a feedback endpoint (see module docstring)."""
        compiled = FeedbackSpec.build(spec)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                refused = _capture_of(flask.current_app).capture(compiled)
                if refused is not None:
                    return refused
                return view(*args, **kwargs)

            wrapper._feedbackguard_spec = compiled  # type: ignore[attr-defined]
            return cast(F, wrapper)

        return decorate

    def capture_of(self, app: flask.Flask | None = None) -> Capture:
        """The state for `app`, else the current app, else the first app."""
        if app is None:
            app = flask.current_app if flask.has_app_context() else self._app
        if app is None:
            raise RuntimeError("FeedbackGuard is not initialised on any app")
        return _capture_of(app)

    @property
    def counters(self) -> CaptureCounters:
        return self.capture_of().counters

    def replay_spool(self, app: flask.Flask | None = None) -> int:
        """Replay the spool now (the background thread does it every spool_retry_s)."""
        return self.capture_of(app).replay_spool()

    def flush(self, app: flask.Flask | None = None) -> None:
        """Send what the buffered mode holds now (no-op in sync mode)."""
        sender = self.capture_of(app).sender
        if isinstance(sender, _BufferedSender):
            sender.flush()

    def close(self) -> None:
        """Flush, stop the background threads and close the Redis clients."""
        for capture in self._captures:
            capture.close()


def _capture_of(app: flask.Flask) -> Capture:
    return cast(Capture, app.extensions[EXTENSION])


def _route_table_hook() -> flask.Response | None:
    """before_request: capture for endpoints named in FEEDBACKGUARD_ROUTES (unless the
    view is decorated, which wins, so an event is never captured twice)."""
    endpoint = flask.request.endpoint
    if endpoint is None:
        return None
    capture = _capture_of(flask.current_app)
    spec = capture.routes.get(endpoint)
    if spec is None:
        return None
    view = flask.current_app.view_functions.get(endpoint)
    if getattr(view, "_feedbackguard_spec", None) is not None:
        return None
    return capture.capture(spec)
