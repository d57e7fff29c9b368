"""Field sources: where each event field of a feedback endpoint comes from.

A source is "json:a.b.0" (path in the request JSON), "view:name" (URL variable),
"g:name" (attribute of flask.g), "header:Name", "const:text", any other value (a
constant) or a callable taking no argument (called in the request context). Sources
are compiled once, when an endpoint is registered, so a request only runs the
pre-parsed lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flask

Getter = Callable[[flask.Request, Any], Any]
"""A compiled field source: (request, parsed JSON body) -> value or None."""

# Spec keyword -> FeedbackEvent field.
SPEC_FIELDS: dict[str, str] = {
    "kind": "kind",
    "account": "account_id",
    "item": "item_id",
    "value": "value",
    "model_output": "model_output",
    "payload": "payload",
    "namespace": "namespace",
    "account_created_at": "account_created_at",
}
REQUIRED = ("kind", "account", "item", "value")


def _json_path(path: str) -> Getter:
    parts = [int(p) if p.isdigit() else p for p in path.split(".") if p]

    def get(request: flask.Request, node: Any) -> Any:
        for part in parts:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(node, dict):
                node = node.get(str(part))
            else:
                return None
        return node

    return get


def _view_arg(name: str) -> Getter:
    return lambda request, body: (request.view_args or {}).get(name)


def _g_attr(name: str) -> Getter:
    return lambda request, body: getattr(flask.g, name, None)


def _header(name: str) -> Getter:
    return lambda request, body: request.headers.get(name)


def _constant(value: Any) -> Getter:
    return lambda request, body: value


def _call(source: Callable[[], Any]) -> Getter:
    return lambda request, body: source()


_PREFIXES: dict[str, Callable[[str], Getter]] = {
    "json:": _json_path,
    "view:": _view_arg,
    "g:": _g_attr,
    "header:": _header,
    "const:": _constant,
}


def compile_source(source: Any) -> Getter:
    """Turn a field source (see the module docstring) into a getter."""
    if callable(source):
        return _call(source)
    if isinstance(source, str):
        for prefix, make in _PREFIXES.items():
            if source.startswith(prefix):
                return make(source[len(prefix) :])
    return _constant(source)


@dataclass(frozen=True)
class FeedbackSpec:
    """Where each event field of one feedback endpoint comes from, pre-compiled."""

    getters: tuple[tuple[str, Getter], ...]
    reads_json: bool

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> FeedbackSpec:
        unknown = set(spec) - set(SPEC_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown feedback spec keys {sorted(unknown)}; expected {sorted(SPEC_FIELDS)}"
            )
        for required in REQUIRED:
            if required not in spec:
                raise ValueError(f"feedback spec needs a source for {required!r}")
        getters = tuple((SPEC_FIELDS[k], compile_source(v)) for k, v in spec.items())
        reads_json = any(isinstance(v, str) and v.startswith("json:") for v in spec.values())
        return cls(getters, reads_json)
