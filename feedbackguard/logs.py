"""Structured JSON logs: one JSON object a line, with whatever `extra=` fields the
caller passes (event ids, namespace, actor...). Never secrets or raw IPs: fields named
like secrets are dropped, `ip` fields are replaced by a short keyed hash (`hash_ip`),
and messages pass through as data (JSON-escaped, so attacker text stays inert)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from flask import current_app, has_app_context

SECRET_WORDS: Final = ("password", "secret", "token", "authorization", "api_key", "cookie")
IP_FIELDS: Final = frozenset({"ip", "client_ip", "remote_addr"})
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


IP_HASH_CONTEXT: Final = b"feedbackguard.logs.hash_ip"
IP_HASH_HEX: Final = 16

# Used outside a Flask app when `set_ip_key` was never called: random, so hashes are
# still not reversible, but only stable within this process.
_process_key: bytes = secrets.token_bytes(32)


@functools.lru_cache(maxsize=16)
def ip_key(secret: str | bytes) -> bytes:
    """The IP-hashing key derived from a deployment secret (never the secret itself)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, IP_HASH_CONTEXT, hashlib.sha256).digest()


def set_ip_key(secret: str | bytes) -> None:
    """Hash IPs with a key derived from `secret` when no Flask app is active (workers,
    the CLI): give every process of a deployment the same secret to correlate them."""
    global _process_key
    _process_key = ip_key(secret)


def _current_key() -> bytes:
    if has_app_context():
        secret = current_app.secret_key
        if secret:
            return ip_key(secret)
    return _process_key


def hash_ip(ip: str, key: bytes | None = None) -> str:
    """A stable pseudonym for an IP: HMAC-SHA256 under the deployment's key (the Flask
    app's secret key inside a request, else `set_ip_key`'s), truncated. Keyed, so it
    cannot be reversed by hashing all 2^32 IPv4 addresses; the same IP gets the same
    pseudonym across the processes of one deployment (log lines and rate limits
    correlate), a different one under another secret."""
    digest = hmac.new(key or _current_key(), ip.encode("utf-8"), hashlib.sha256)
    return "ip:" + digest.hexdigest()[:IP_HASH_HEX]


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
