"""Structured JSON logs: one JSON object a line, with whatever `extra=` fields the
caller passes (event ids, namespace, actor...). Never secrets or raw IPs: fields named
like secrets are dropped, `ip` fields are replaced by a short keyed-free SHA-256 hash,
and messages pass through as data (JSON-escaped, so attacker text stays inert)."""

from __future__ import annotations

import hashlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

SECRET_WORDS: Final = ("password", "secret", "token", "authorization", "api_key", "cookie")
IP_FIELDS: Final = frozenset({"ip", "client_ip", "remote_addr"})
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


def hash_ip(ip: str) -> str:
    """A stable pseudonym for an IP (correlates log lines without revealing it)."""
    return "ip:" + hashlib.sha256(ip.encode("utf-8")).hexdigest()[:16]


def _clean(key: str, value: Any) -> Any:
    lowered = key.lower()
    if any(word in lowered for word in SECRET_WORDS):
        return "[redacted]"
    if lowered in IP_FIELDS and isinstance(value, str):
        return hash_ip(value)
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: int | str = logging.INFO) -> None:
    """Send the root logger's records to stderr as JSON lines (replacing handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
