"""How an event leaves the request: sent before the view runs (sync, the default), or
queued in memory for a background flush (buffered, opt-in)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from feedbackguard.capture.state import Capture

log = logging.getLogger(__name__)

_MS = 1000.0


class Sender(Protocol):
    def send(self, namespace: str, raw: bytes) -> bool:
        """Queue or send one event; False when a full inbox refused it (answer 503)."""
        ...

    def close(self) -> None: ...


class SyncSender:
    """One pipelined round trip per request, before the view runs."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    def send(self, namespace: str, raw: bytes) -> bool:
        return self._capture.deliver([(namespace, raw)], can_refuse=True)

    def close(self) -> None:
        return None


class BufferedSender:
    """Events wait in memory; a per-process thread pipelines them every
    `buffer_flush_ms` (sooner once `buffer_max_events` wait) and at exit. The thread
    and the exit hook start with the first event of each process."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._flush_s = capture.settings.buffer_flush_ms / _MS
        self._max = capture.settings.buffer_max_events
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._pid = 0
        self._exit_hooked = False

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
        if not self._exit_hooked:  # a forked worker inherits the hook
            self._exit_hooked = True
            atexit.register(self.close)
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
