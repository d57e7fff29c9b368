"""Capture's state for one app, and what it does with each feedback request.

A `Capture` holds the app's settings, compiled route table, counters, breakers and
spool. Redis is opened on first use, not when the app is set up: the first event to
deliver (or the first spool replay) opens the client, which starts the embedded
redis-server only when no `redis_url` is configured. The checks that need the app's
routes (`validate`) run once, before the app's first request unless called earlier.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import flask
import pydantic
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from feedbackguard.capture import validate
from feedbackguard.capture.body import BodyTooDeep, BodyTooLarge
from feedbackguard.capture.breaker import REDIS_UNAVAILABLE, CircuitBreaker
from feedbackguard.capture.request import event_fields, read_body
from feedbackguard.capture.responses import (
    full_response,
    invalid_response,
    too_deep_response,
    too_large_response,
)
from feedbackguard.capture.senders import BufferedSender, Sender, SyncSender
from feedbackguard.capture.sources import CaptureConfigError, FeedbackSpec
from feedbackguard.capture.spool import Spool, SpoolFullError
from feedbackguard.capture.spool_retry import SpoolRetrier
from feedbackguard.connection import redis_url
from feedbackguard.events import FeedbackEvent, edge_context
from feedbackguard.inbox_writer import InboxWriter, UnsureWriteError
from feedbackguard.settings import Settings

log = logging.getLogger(__name__)

# A full inbox is logged at most this often per process (it can flap at the cap).
FULL_LOG_EVERY_S = 60.0
_MS = 1000.0


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


def compile_routes(routes: Any) -> dict[str, FeedbackSpec]:
    """The route table (`FEEDBACKGUARD_ROUTES`: endpoint -> spec) compiled;
    `CaptureConfigError` naming the entry when one is not a valid spec."""
    if not isinstance(routes, Mapping):
        raise CaptureConfigError(
            "FEEDBACKGUARD_ROUTES must map endpoint names to feedback specs, "
            f"not {type(routes).__name__}"
        )
    compiled = {}
    for endpoint, spec in routes.items():
        where = f"FEEDBACKGUARD_ROUTES[{endpoint!r}]"
        if not isinstance(spec, Mapping):
            raise CaptureConfigError(f"{where}: a spec maps fields to sources, not {spec!r}")
        compiled[str(endpoint)] = FeedbackSpec.build(spec, where)
    return compiled


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


class Capture:
    """Everything capture needs for one app: settings, routes, counters, breakers,
    spool, and the Redis client and inbox writer it opens on first use. `clock` is the
    breakers' time source."""

    def __init__(
        self,
        settings: Settings,
        routes: Mapping[str, Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.routes = compile_routes(routes)
        self.counters = CaptureCounters()
        self.breaker = CircuitBreaker(settings.breaker_cooldown_s, clock)
        # Open while an inbox is past `inbox_maxlen`: new events go to the overflow path.
        self.backpressure = CircuitBreaker(settings.breaker_cooldown_s, clock)
        self.spool = Spool(settings.resolved_spool_path, settings.spool_max_bytes)
        self.pass_invalid = settings.invalid_feedback == "pass"
        self._edge = edge_context(settings.account_dates())
        self.spool_overflow = settings.inbox_overflow == "spool"
        self._clock = clock
        self._full_logged_at = -FULL_LOG_EVERY_S
        self._open_lock = threading.Lock()
        self._opened: tuple[redis.Redis[bytes], InboxWriter] | None = None
        self._retrier = SpoolRetrier(self)
        self._check_lock = threading.Lock()
        self._checked: CaptureConfigError | bool = False
        self._warned: set[tuple[str | None, str]] = set()
        self.sender: Sender = (
            BufferedSender(self) if settings.capture_mode == "buffered" else SyncSender(self)
        )

    # -- Redis, opened on first use --------------------------------------------

    @property
    def client(self) -> redis.Redis[bytes]:
        return self._open()[0]

    @property
    def writer(self) -> InboxWriter:
        return self._open()[1]

    def _open(self) -> tuple[redis.Redis[bytes], InboxWriter]:
        opened = self._opened
        if opened is None:
            with self._open_lock:
                if self._opened is None:
                    client = capture_client(self.settings)
                    self._opened = (client, InboxWriter(client, self.settings.inbox_maxlen))
                opened = self._opened
        return opened

    # -- the app's routes, checked once ------------------------------------------

    def validate(self, app: flask.Flask) -> None:
        """Check the app's feedback endpoints against its routes (see
        `capture.validate`), once: `CaptureConfigError` naming every bad entry, now and
        at every later call; a WARNING, once, naming the endpoints that never supply
        the account's age."""
        if self._checked is False:
            with self._check_lock:
                if self._checked is False:
                    self._checked = self._check(app)
        if isinstance(self._checked, CaptureConfigError):
            raise self._checked

    def _check(self, app: flask.Flask) -> CaptureConfigError | bool:
        found = validate.problems(app, self.routes)
        if found:
            return CaptureConfigError(
                "feedbackguard: the app's feedback endpoints are misconfigured:\n  "
                + "\n  ".join(found)
            )
        ageless = validate.without_account_age(app, self.routes)
        if ageless:
            log.warning(
                "feedbackguard: feedback endpoint(s) %s never supply account_created_at; "
                "account age drives several checks (the young-account rate limits, consensus "
                "weight, Sybil infrastructure, trust seeds): add account_created_at=... to "
                "their spec",
                ", ".join(repr(e) for e in ageless),
            )
        return True

    # -- per request -----------------------------------------------------------

    def capture(self, spec: FeedbackSpec) -> flask.Response | None:
        """Validate and queue this request's event; a 422 response if it is refused
        (413 for a body past `max_body_bytes`, answered even in "pass" mode: the body
        is not read past the limit, so it cannot be handed on whole)."""
        self._retrier.ensure_started()
        # One context-local lookup, not one per field.
        request: flask.Request = cast(Any, flask.request)._get_current_object()
        body = None
        try:
            body = read_body(request, spec, self.settings)
            event = FeedbackEvent.model_validate(
                event_fields(request, spec, self.settings, body), context=self._edge
            )
        except BodyTooLarge as exc:
            self.counters.invalid += 1
            return too_large_response(exc.limit)
        except BodyTooDeep as exc:
            self.counters.invalid += 1
            return too_deep_response(exc.limit)
        except pydantic.ValidationError as exc:
            self.counters.invalid += 1
            self._explain(request, spec, body)
            return None if self.pass_invalid else invalid_response(exc)
        if not self.spool_overflow and not self.backpressure.allow():
            self.counters.refused += 1
            return full_response(self.settings.breaker_cooldown_s)
        try:
            if not self.sender.send(event.namespace, event.to_json()):
                return full_response(self.settings.breaker_cooldown_s)
        except Exception:  # invariant 3: capture never breaks the product endpoint
            self.counters.dropped += 1
            log.exception("feedbackguard capture failed; event %s dropped", event.event_id)
        return None

    def _explain(self, request: flask.Request, spec: FeedbackSpec, body: Any) -> None:
        """On refused feedback, log once per endpoint and source what looks like the
        spec's mistake rather than the end user's: a JSON spec sent a body that is not
        JSON (an HTML form?), or a `json:` path that found nothing beside a key that
        looks like it (a misspelt path)."""
        if not spec.reads_json:
            return
        endpoint = request.endpoint
        if body is None:
            self._warn_once(
                endpoint,
                "",
                "feedbackguard: endpoint %r reads json: sources but the request body is not "
                "JSON; for HTML forms use form: sources",
                endpoint,
            )
            return
        for name, source in spec.json_sources:
            if source(request, body) is None:
                near = source.near_miss(body)
                if near is not None:
                    self._warn_once(
                        endpoint,
                        source.text,
                        "feedbackguard: endpoint %r: json:%s found nothing for %s, but the body "
                        "has %r; a misspelt path? (every such request is refused)",
                        endpoint,
                        source.text,
                        name,
                        near,
                    )

    def _warn_once(self, endpoint: str | None, what: str, message: str, *args: Any) -> None:
        if (endpoint, what) not in self._warned:
            self._warned.add((endpoint, what))
            log.warning(message, *args)

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
        except REDIS_UNAVAILABLE as exc:
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
        now = self._clock()
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
        """Flush what waits, stop the threads and close what was opened."""
        self.sender.close()
        self._retrier.stop()
        opened = self._opened
        if opened is not None:
            client, writer = opened
            writer.close()
            client.close()
