"""A small typed-endpoint layer for the admin API: each endpoint declares its method,
path, minimum role and pydantic body / query / response models. The same declarations
register the Flask views (auth, parsing, 422 with field paths) and build the OpenAPI
3.1 document, so the document cannot drift from what the views accept."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from feedbackguard.web.admin.models import ErrorOut, FieldError
from feedbackguard.web.auth import Role, authorize

View = Callable[..., BaseModel]
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /v1/accounts/{account_id}
    summary: str
    role: Role | None  # None: public
    out: type[BaseModel] | None
    view: View
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()

    @property
    def rule(self) -> str:
        return _PARAM.sub(r"<\1>", self.path)

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def operation_id(self) -> str:
        return self.view.__name__


class ApiError(Exception):
    """An error answer: status, code, message and optional field errors."""

    def __init__(
        self, status: int, code: str, message: str, detail: list[FieldError] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def field_errors(exc: pydantic.ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in err["loc"])
        loc = ".".join(part for part in (prefix, path) if part) or "(root)"
        out.append(FieldError(loc=loc, msg=err["msg"], type=err["type"]))
    return out


def invalid(exc: pydantic.ValidationError, prefix: str = "") -> ApiError:
    return ApiError(422, "invalid", "request does not validate", field_errors(exc, prefix))


def error_response(err: ApiError) -> tuple[Response, int]:
    body = ErrorOut(error=err.code, message=err.message, detail=err.detail)
    return jsonify(body.model_dump(mode="json", exclude_none=True)), err.status


@dataclass
class Registry:
    endpoints: list[Endpoint] = field(default_factory=list)

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        role: Role | None,
        out: type[BaseModel] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
    ) -> Callable[[View], View]:
        def register(view: View) -> View:
            summary = (view.__doc__ or view.__name__).strip().splitlines()[0]
            self.endpoints.append(
                Endpoint(method, path, summary, role, out, view, body, query, status, errors)
            )
            return view

        return register

    def install(self, bp: Blueprint) -> None:
        for ep in self.endpoints:
            bp.add_url_rule(
                ep.rule, endpoint=ep.operation_id, view_func=_handler(ep), methods=[ep.method]
            )


def _parse_body(ep: Endpoint) -> BaseModel | None:
    if ep.body is None:
        return None
    raw = request.get_data(cache=True)
    try:
        return ep.body.model_validate_json(raw or b"{}")
    except pydantic.ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "bad_json", "request body is not valid JSON") from exc
        raise invalid(exc) from exc


def _parse_query(ep: Endpoint) -> BaseModel | None:
    if ep.query is None:
        if request.args:
            raise ApiError(422, "invalid", "no query parameters expected")
        return None
    try:
        return ep.query.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise invalid(exc) from exc


def _handler(ep: Endpoint) -> Callable[..., Any]:
    def handle(**params: str) -> Any:
        if ep.role is not None:
            principal, denied = authorize(ep.role)
            if denied is not None:
                return denied
            g.principal = principal
        try:
            kwargs: dict[str, Any] = dict(params)
            body = _parse_body(ep)
            query = _parse_query(ep)
            if body is not None:
                kwargs["body"] = body
            if query is not None:
                kwargs["query"] = query
            result = ep.view(**kwargs)
        except ApiError as err:
            return error_response(err)
        if result is None or ep.out is None:
            return Response(status=ep.status)
        return jsonify(result.model_dump(mode="json")), ep.status

    handle.__name__ = ep.operation_id
    return handle


# --- OpenAPI ----------------------------------------------------------------------------

_ERROR_TEXT = {
    400: "Body is not JSON",
    401: "No valid credentials",
    403: "Role too low",
    404: "Not found",
    409: "Conflict",
    422: "Validation failed (field paths in detail)",
    429: "Too many failed authentications",
}


def openapi(registry: Registry, prefix: str, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the registry's endpoints, mounted under `prefix`."""
    models: list[tuple[type[BaseModel], Any]] = [(ErrorOut, "serialization")]
    for ep in registry.endpoints:
        if ep.body is not None:
            models.append((ep.body, "validation"))
        if ep.out is not None:
            models.append((ep.out, "serialization"))
    keyed, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(keyed[(model, mode)])  # type: ignore[index]

    error_ref = ref(ErrorOut, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for ep in registry.endpoints:
        op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary}
        parameters: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in ep.params
        ]
        if ep.query is not None:
            q_schema = ep.query.model_json_schema()
            required = set(q_schema.get("required", []))
            for name, prop in q_schema.get("properties", {}).items():
                parameters.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if parameters:
            op["parameters"] = parameters
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(ep.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        if ep.out is not None:
            responses[str(ep.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ref(ep.out, "serialization")}},
            }
        else:
            responses[str(ep.status)] = {"description": "OK"}
        codes = set(ep.errors) | {422}
        if ep.body is not None:
            codes.add(400)
        if ep.role is not None:
            codes |= {401, 403, 429}
        if ep.params:
            codes.add(404)
        for code in sorted(codes):
            responses[str(code)] = {
                "description": _ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"] = responses
        if ep.role is None:
            op["security"] = []
        else:
            op["description"] = f"Requires role `{ep.role}` or higher."
        paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
