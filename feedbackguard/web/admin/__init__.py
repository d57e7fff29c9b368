"""The admin API (/v1): policy, accounts, allow/deny lists, purge, namespaces, audit,
API keys. Every write needs the `admin` role, reads `viewer` or higher (see
`feedbackguard.web.auth`). Bodies and answers are pydantic models (`admin.models`); the
OpenAPI 3.1 document at /v1/openapi.json is generated from them.

Each endpoint group is a module with its own `Registry`; `api` is all of them, in the
order the OpenAPI document lists them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from feedbackguard import __version__
from feedbackguard.web.admin import accounts, audit, keys, lists, namespaces, policy, purge
from feedbackguard.web.admin.api import ApiError, Registry, error_response, openapi

GROUPS = (policy, accounts, lists, purge, namespaces, audit, keys)
"""The endpoint groups, in the order of the OpenAPI document."""

api = Registry([ep for group in GROUPS for ep in group.api.endpoints])


def create_admin_blueprint() -> Blueprint:
    """The admin API blueprint; mount it under `settings.admin_prefix`."""
    bp = Blueprint("admin", __name__)
    api.install(bp)

    @bp.get("/v1/openapi.json")
    def openapi_json() -> Any:
        prefix = request.path[: -len("/v1/openapi.json")]
        return jsonify(openapi(api, prefix, "feedbackguard admin API", __version__))

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return error_response(
            ApiError(
                exc.code or 500,
                (exc.name or "error").lower().replace(" ", "_"),
                exc.description or "",
            )
        )

    return bp
