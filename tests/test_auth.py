"""Auth: users (scrypt), API keys (shown once, SHA-256 at rest), roles, 401/403/429."""

from __future__ import annotations

import hashlib

import pytest
import redis
from flask.testing import FlaskClient

from feedbackguard import audit, keys
from feedbackguard.web import auth


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
    auth.add_user(r, "a", "viewer", "pw")
    auth.add_user(r, "b", "viewer", "pw")
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
    auth.add_user(r, "mo", "admin", "pw")
    with client.session_transaction() as sess:
        sess["fg_user"] = "mo"
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
