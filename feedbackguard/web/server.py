"""The feedbackguard web app: review UI/API, admin API, /metrics, /healthz, /readyz.

`create_app()` builds one Flask app around a `Runtime` (settings, Redis, store).
The review blueprint is mounted at `settings.review_prefix`, the admin API at
`settings.admin_prefix`. Session cookies are signed with `settings.secret_key`, or
with a key generated once and kept under `settings.home` so restarts keep sessions.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from feedbackguard import metrics
from feedbackguard.logs import hash_ip
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.settings import Settings
from feedbackguard.web import auth
from feedbackguard.web.admin import create_admin_blueprint
from feedbackguard.web.admin.api import ApiError, error_response
from feedbackguard.web.context import init_runtime
from feedbackguard.web.review import create_review_blueprint

log = logging.getLogger("feedbackguard.web.server")

SECRET_KEY_FILE: Final = "secret_key"  # noqa: S105 (a file name)
SECRET_KEY_BYTES: Final = 32
READY_PROBE_EVENT: Final = "__readyz__"
REDIS_DOWN_MESSAGE: Final = "Redis is unreachable; try again when it is back"
REDIS_RETRY_AFTER_S: Final = 5


def secret_key(settings: Settings) -> str:
    """The configured session key, else one generated once and kept under home."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.home) / SECRET_KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(SECRET_KEY_BYTES)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: two servers starting at once agree on one key
    return path.read_text(encoding="utf-8").strip()


def _prefix(value: str) -> str:
    value = "/" + value.strip("/")
    return "" if value == "/" else value


def create_app(runtime: Runtime | None = None) -> Flask:
    """The app with both blueprints, metrics and health endpoints."""
    rt = runtime if runtime is not None else Runtime.build(Settings())
    settings = rt.settings
    app = Flask("feedbackguard")
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime_s),
    )
    init_runtime(app, rt)
    admin_prefix = _prefix(settings.admin_prefix)
    app.register_blueprint(create_admin_blueprint(), url_prefix=admin_prefix)
    app.register_blueprint(create_review_blueprint(), url_prefix=_prefix(settings.review_prefix))

    @app.get("/metrics")
    def metrics_view() -> Any:
        """Prometheus metrics; with `metrics_require_key`, for viewers and above only."""
        if settings.metrics_require_key:
            _, refused = auth.authorize("viewer")
            if refused is not None:
                return refused
        return Response(metrics.render(rt.redis), mimetype="text/plain; version=0.0.4")

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness: the process answers."""
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness: Redis answers and the store can be read."""
        checks: dict[str, str] = {}
        try:
            rt.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        try:
            rt.pipeline.store.get(READY_PROBE_EVENT)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), (
            200 if ok else 503
        )

    def wants_json() -> bool:
        return request.path.startswith(admin_prefix + "/v1") or (
            request.accept_mimetypes.best == "application/json"
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """JSON errors under the admin API (and for JSON clients); HTML elsewhere."""
        if not wants_json():
            return exc
        body = {
            "error": (exc.name or "error").lower().replace(" ", "_"),
            "message": exc.description or "",
        }
        resp = jsonify(body)
        resp.status_code = exc.code or 500
        if exc.code == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def redis_unavailable(exc: redis.RedisError) -> Any:
        """503 naming Redis (a client retries later), not a 500: Redis down or too
        slow is an outage of a dependency, not a bug. The details stay in the log."""
        log.error("redis unavailable: %s", exc, extra={"path": request.path})
        if wants_json():
            resp, status = error_response(ApiError(503, "redis_unavailable", REDIS_DOWN_MESSAGE))
        else:
            resp, status = Response(REDIS_DOWN_MESSAGE, mimetype="text/plain"), 503
        resp.headers["Retry-After"] = str(REDIS_RETRY_AFTER_S)
        return resp, status

    @app.before_request
    def _started() -> None:
        g.fg_started = time.perf_counter()

    @app.after_request
    def _logged(resp: Response) -> Response:
        started = g.get("fg_started")
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": resp.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                if started
                else None,
                "client": hash_ip(request.remote_addr or "unknown"),
            },
        )
        return resp

    return app
