"""Who is calling: users (password, for the review UI's session) and API keys.

Roles are ordered ``viewer < moderator < admin``; a route needs a minimum role.

* Users: the password is hashed with scrypt (a slow, memory-hard KDF) and a random
  per-user salt; verification recomputes it and compares in constant time.
* API keys: the secret ``fgk_<key_id>_<random>`` is returned once by `add_key` and
  never stored; Redis keeps only its SHA-256, looked up by ``key_id`` and compared with
  `hmac.compare_digest` (the secret has 256 bits of entropy, so a fast hash is enough).
* Sessions (the review UI's signed cookie) carry the user's session generation and
  their start time: a session is honoured only while its generation is the user's
  current one (logout, a password reset and removal increment it, ending every session
  of the user at once) and for `session_lifetime_s` after login.
* Failed authentications are rate limited per client (hashed IP, the address
  `trusted_proxies` hops from the right of X-Forwarded-For, as capture reads it): a
  fixed window of `auth_fail_limit` failures per `auth_fail_window_s`, after which
  the client gets 429 until the window ends, whatever it sends. Logins are counted
  before the password is checked (so parallel guesses cannot all reach scrypt), per
  client and per account name, and a successful one gives its attempts back.

Everything lives in Redis under ``fg:auth:*``; user and key changes are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Final, Literal, TypeVar, cast, get_args

import orjson
import redis
from flask import Response, g, jsonify, request, session

from feedbackguard import audit, keys, scripts
from feedbackguard.clientaddr import client_ip
from feedbackguard.logs import hash_ip
from feedbackguard.web.context import runtime

Role = Literal["viewer", "moderator", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
RANK: Final[dict[str, int]] = {role: i for i, role in enumerate(ROLES)}


# scrypt cost: N=2**14, r=8, p=1 needs 16 MiB and ~50 ms a hash (OWASP's minimum is
# N=2**17 at r=8 for interactive logins on servers; we keep 2**14 so tests stay fast
# and raise it through SCRYPT_N if the deployment allows).
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_DKLEN: Final = 32
SCRYPT_MAXMEM: Final = 64 * 1024 * 1024
SALT_BYTES: Final = 16

KEY_PREFIX: Final = "fgk"
KEY_ID_BYTES: Final = 8
KEY_SECRET_BYTES: Final = 32

FAILED_AUTH_LIMIT: Final = 10
"""Failed authentications allowed per client per window before it gets 429 (defaults;
the web app uses settings `auth_fail_limit` and `auth_fail_window_s`)."""
FAILED_AUTH_WINDOW_S: Final = 60

NAME_MAX: Final = 64

Via = Literal["key", "session"]

SESSION_USER: Final = "fg_user"
SESSION_GENERATION: Final = "fg_gen"
SESSION_STARTED: Final = "fg_since"

KEY_HEADERS: Final = ("Authorization: Bearer <key>", "X-API-Key: <key>")
CREDENTIALS_HINT: Final = (
    f"send an API key as '{KEY_HEADERS[0]}' or '{KEY_HEADERS[1]}', or log in to the review UI"
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user (via the session) or an API key's name."""

    name: str
    role: Role
    via: Via

    def has(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


def _check_role(role: str) -> Role:
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return cast(Role, role)


PASSWORD_MIN_CHARS: Final = 12
"""The shortest password a user may be given. Guessing is also slowed by scrypt and the
login attempt limits; length is what a guesser cannot shortcut (NIST SP 800-63B asks
for at least 8; these accounts can admit training data)."""


def _check_name(name: str) -> str:
    if not name or len(name) > NAME_MAX or not name.isprintable() or ":" in name:
        raise ValueError(f"invalid name {name!r} (1-{NAME_MAX} printable chars, no ':')")
    return name


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=SCRYPT_DKLEN,
        maxmem=SCRYPT_MAXMEM,
    )


# A dummy hash so that verifying an unknown user costs as much as a known one.
_DUMMY_SALT: Final = b"\x00" * SALT_BYTES


def add_user(
    r: redis.Redis[bytes], name: str, role: str, password: str, actor: str = "cli"
) -> None:
    """Create or replace user `name` with `role` and `password` (audited)."""
    _check_name(name)
    checked = _check_role(role)
    if len(password) < PASSWORD_MIN_CHARS:
        raise ValueError(f"password too short: at least {PASSWORD_MIN_CHARS} characters")
    salt = secrets.token_bytes(SALT_BYTES)
    record = {
        "role": checked,
        "salt": salt.hex(),
        "hash": _scrypt(password, salt).hex(),
        "kdf": f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}",
        "created_at": datetime.now(UTC).isoformat(),
    }
    # Audited first: the audit log has a slot of its own (audit.record); the user's
    # keys change at once (one slot: `fg:{@auth}:...`).
    audit.record(r, actor, "user.add", user=name, role=checked)
    with r.pipeline(transaction=True) as p:
        p.set(keys.auth_user(name), orjson.dumps(record))
        p.sadd(keys.auth_users(), name)
        p.incr(keys.auth_session_generation(name))  # a new password ends old sessions
        p.execute()


def remove_user(r: redis.Redis[bytes], name: str, actor: str = "cli") -> bool:
    """Delete user `name` and end their sessions; True when it existed (audited)."""
    audit.record(r, actor, "user.remove", user=name)
    with r.pipeline(transaction=True) as p:
        p.delete(keys.auth_user(name))
        p.srem(keys.auth_users(), name)
        # Incremented, never deleted: a user added again must not revive old cookies.
        p.incr(keys.auth_session_generation(name))
        deleted = p.execute()[0]
    return bool(deleted)


def session_generation(r: redis.Redis[bytes], name: str) -> int:
    """The user's current session generation (0 before any was set)."""
    raw = r.get(keys.auth_session_generation(name))
    return int(raw) if raw is not None else 0


def revoke_sessions(r: redis.Redis[bytes], name: str) -> int:
    """End every session of `name` (logout): returns the new generation."""
    return int(r.incr(keys.auth_session_generation(name)))


def _kdf_params(kdf: str) -> tuple[int, int, int]:
    _, n, r_, p = kdf.split(":")
    return int(n), int(r_), int(p)


def verify_password(r: redis.Redis[bytes], name: str, password: str) -> Principal | None:
    """The user's principal when `password` is right, else None (constant-time compare)."""
    raw = r.get(keys.auth_user(name)) if name and ":" not in name else None
    if raw is None:
        _scrypt(password, _DUMMY_SALT)  # same cost as a real check: no user enumeration
        return None
    record = orjson.loads(raw)
    n, r_, p = _kdf_params(record["kdf"])
    got = hashlib.scrypt(
        password.encode("utf-8"),
        salt=bytes.fromhex(record["salt"]),
        n=n,
        r=r_,
        p=p,
        dklen=SCRYPT_DKLEN,
        maxmem=SCRYPT_MAXMEM,
    )
    if not hmac.compare_digest(got, bytes.fromhex(record["hash"])):
        return None
    return Principal(name=name, role=_check_role(record["role"]), via="session")


def user_role(r: redis.Redis[bytes], name: str) -> Role | None:
    """The role of an existing user (for sessions: the role is read on every request,
    so a demoted or removed user loses access at once)."""
    raw = r.get(keys.auth_user(name))
    if raw is None:
        return None
    return _check_role(orjson.loads(raw)["role"])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def add_key(r: redis.Redis[bytes], name: str, role: str, actor: str = "cli") -> tuple[str, str]:
    """A new API key for `name` with `role`: (key_id, secret). The secret is shown once;
    only its SHA-256 is stored."""
    _check_name(name)
    checked = _check_role(role)
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"
    record = {
        "name": name,
        "role": checked,
        "sha256": _digest(secret),
        "created_at": datetime.now(UTC).isoformat(),
    }
    audit.record(r, actor, "key.add", key_id=key_id, name=name, role=checked)
    with r.pipeline(transaction=True) as p:
        p.set(keys.auth_api_key(key_id), orjson.dumps(record))
        p.sadd(keys.auth_keys(), key_id)
        p.execute()
    return key_id, secret


def revoke_key(r: redis.Redis[bytes], key_id: str, actor: str = "cli") -> bool:
    """Delete the key; True when it existed (audited either way)."""
    audit.record(r, actor, "key.revoke", key_id=key_id)
    with r.pipeline(transaction=True) as p:
        p.delete(keys.auth_api_key(key_id))
        p.srem(keys.auth_keys(), key_id)
        deleted, _ = p.execute()
    return bool(deleted)


def list_keys(r: redis.Redis[bytes]) -> list[dict[str, Any]]:
    """Every key's id, name, role and creation time (never the hash)."""
    out = []
    for raw_id in sorted(r.smembers(keys.auth_keys())):
        key_id = raw_id.decode()
        raw = r.get(keys.auth_api_key(key_id))
        if raw is None:
            continue
        rec = orjson.loads(raw)
        out.append(
            {
                "key_id": key_id,
                "name": rec["name"],
                "role": rec["role"],
                "created_at": rec["created_at"],
            }
        )
    return out


def principal_for_key(r: redis.Redis[bytes], secret: str) -> Principal | None:
    """The key's principal when `secret` is a live key, else None."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1].isalnum():
        return None
    raw = r.get(keys.auth_api_key(parts[1]))
    if raw is None:
        return None
    rec = orjson.loads(raw)
    if not hmac.compare_digest(_digest(secret), rec["sha256"]):
        return None
    return Principal(name=rec["name"], role=_check_role(rec["role"]), via="key")


# --- failed-auth rate limit -----------------------------------------------------------


def client_id() -> str:
    """The caller's identity for rate limiting: a hash of its IP (never the raw IP), the
    IP being the one capture records (`trusted_proxies` hops from the right of
    X-Forwarded-For), so a proxy's own address never stands for all its clients."""
    ip = client_ip(request, runtime().settings.trusted_proxies)
    return hash_ip(ip or "unknown")


def account_id(name: str) -> str:
    """The identity of an account name for the login limiter (hashed: names of any
    length or content, existing or not, give short keys)."""
    return "acct:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def is_throttled(r: redis.Redis[bytes], client: str, limit: int = FAILED_AUTH_LIMIT) -> bool:
    raw = r.get(keys.auth_failures(client))
    return raw is not None and int(raw) >= limit


def note_failure(r: redis.Redis[bytes], client: str, window_s: int = FAILED_AUTH_WINDOW_S) -> int:
    """Count one failed authentication of `client` in its current window (one atomic
    script: INCR, and the window's expiry on the first count; works on Redis 6.2)."""
    count, _ = scripts.run(r, "auth_count", [keys.auth_failures(client)], [window_s])
    return int(count)


@dataclass(frozen=True)
class LoginAttempt:
    """A counted login attempt: whether it may go on to the password check, and when
    the fuller of its two windows ends."""

    counters: tuple[str, str]
    allowed: bool
    retry_after_s: int


def count_login(
    r: redis.Redis[bytes],
    client: str,
    account: str,
    limit: int = FAILED_AUTH_LIMIT,
    window_s: int = FAILED_AUTH_WINDOW_S,
) -> LoginAttempt:
    """Count a login attempt of `client` naming `account` before checking anything.

    Counting first, atomically, is what bounds the password checks: of any number of
    parallel attempts at most `limit` per window get a count within the limit, for the
    client and for the account name alike; the others are refused without scrypt."""
    counters = (keys.auth_failures(client), keys.auth_account_failures(account_id(account)))
    with r.pipeline(transaction=False) as p:
        for counter in counters:
            scripts.run(p, "auth_count", [counter], [window_s])
        counts = p.execute()
    allowed = all(int(count) <= limit for count, _ in counts)
    retry = max(int(ttl) for count, ttl in counts if allowed or int(count) > limit)
    return LoginAttempt(counters=counters, allowed=allowed, retry_after_s=max(1, retry))


def refund_login(r: redis.Redis[bytes], attempt: LoginAttempt) -> None:
    """Give back a successful login's counts: only failures should use up the budget."""
    with r.pipeline(transaction=False) as p:
        for counter in attempt.counters:
            scripts.run(p, "auth_refund", [counter])
        p.execute()


# --- Flask ---------------------------------------------------------------------------


def _redis() -> redis.Redis[bytes]:
    return runtime().redis


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def start_session(r: redis.Redis[bytes], principal: Principal) -> None:
    """Log `principal` in: a fresh session carrying the user's current generation and
    the login time, and a cookie that expires (Flask's PERMANENT_SESSION_LIFETIME)."""
    session.clear()
    session[SESSION_USER] = principal.name
    session[SESSION_GENERATION] = session_generation(r, principal.name)
    session[SESSION_STARTED] = int(time.time())
    session.permanent = True


def end_session() -> None:
    """Forget the session's user (the CSRF token goes too)."""
    session.clear()


def _session_principal(r: redis.Redis[bytes], lifetime_s: int) -> Principal | None:
    """The session's user while the session is live: its generation is the user's
    current one and it started less than `lifetime_s` ago; the role is read from Redis
    on every request, so a demoted or removed user loses access at once."""
    name = session.get(SESSION_USER)
    if not isinstance(name, str) or not name:
        return None
    generation = session.get(SESSION_GENERATION)
    started = session.get(SESSION_STARTED)
    now = time.time()
    live = (
        isinstance(generation, int)
        and isinstance(started, int)
        and started <= now + 1
        and now - started < lifetime_s
    )
    if live:
        with r.pipeline(transaction=False) as p:
            p.get(keys.auth_user(name))
            p.get(keys.auth_session_generation(name))
            raw_user, raw_generation = p.execute()
        current = int(raw_generation) if raw_generation is not None else 0
        if raw_user is not None and generation == current:
            role = _check_role(orjson.loads(raw_user)["role"])
            return Principal(name=name, role=role, via="session")
    for field in (SESSION_USER, SESSION_GENERATION, SESSION_STARTED):
        session.pop(field, None)
    return None


def current_principal() -> Principal | None:
    """The caller: an API key (`Authorization: Bearer` or `X-API-Key`), else the
    session's user while the session is live (see `_session_principal`)."""
    r = _redis()
    presented = _presented_key()
    if presented:
        return principal_for_key(r, presented)
    return _session_principal(r, runtime().settings.session_lifetime_s)


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


F = TypeVar("F", bound=Callable[..., Any])


def authorize(role: Role) -> tuple[Principal | None, tuple[Response, int] | None]:
    """(principal, None) when the caller may proceed, else (None, error response).

    429 while the client is over its failed-auth budget; 401 without (valid)
    credentials, counting a failure when credentials were presented and wrong;
    403 with too low a role."""
    r = _redis()
    settings = runtime().settings
    client = client_id()
    if is_throttled(r, client, settings.auth_fail_limit):
        resp, status = _error(429, "too_many_failures", "too many failed authentications")
        resp.headers["Retry-After"] = str(max(1, r.ttl(keys.auth_failures(client))))
        return None, (resp, status)
    presented = _presented_key()
    principal = current_principal()
    if principal is None:
        if presented:
            note_failure(r, client, settings.auth_fail_window_s)
            resp, status = _error(401, "unauthorized", f"invalid API key: {CREDENTIALS_HINT}")
        else:
            resp, status = _error(401, "unauthorized", f"credentials required: {CREDENTIALS_HINT}")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="feedbackguard"'
        return None, (resp, status)
    if not principal.has(role):
        return None, _error(403, "forbidden", f"needs role {role}")
    return principal, None


def require_role(role: Role) -> Callable[[F], F]:
    """Decorator: the view runs only for a caller with at least `role`
    (401 JSON without credentials, 403 JSON with too low a role, 429 when throttled).
    The principal is at `flask.g.principal`."""
    _check_role(role)

    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            principal, error = authorize(role)
            if error is not None:
                return error
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, inner)

    return wrap
