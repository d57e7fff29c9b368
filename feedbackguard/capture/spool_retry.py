"""The background replay of the spool once Redis answers again."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from feedbackguard.capture.breaker import REDIS_UNAVAILABLE

if TYPE_CHECKING:
    from feedbackguard.capture.state import Capture

log = logging.getLogger(__name__)


class SpoolRetrier:
    """Per-process thread, started by the first feedback request of each process:
    every `spool_retry_s`, replay the spool if it has events."""

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
        except REDIS_UNAVAILABLE as exc:
            log.info("feedbackguard: spool replay postponed (%s)", exc)
            self._capture.breaker.failure()
            return
        except Exception:  # a daemon thread must not die silently
            log.exception("feedbackguard: spool replay failed")
            return
        self._capture.breaker.success()

    def stop(self) -> None:
        self._stopped.set()
