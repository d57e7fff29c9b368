"""Field sources: where each event field of a feedback endpoint comes from.

A source is one of

    json:a.b.0      a path in the request's JSON body (object keys, list indexes)
    form:name       a field of an HTML form body (text)
    view:name       a URL variable of the endpoint's rule
    g:name          an attribute of flask.g
    header:Name     a request header
    const:text      the constant text
    a callable      called with no argument in the request context
    5, True, ...    any other value that is not text is a constant

A string must start with one of the prefixes above, with two exceptions kept for
the spec's natural constants: `kind` may be a bare kind name (`kind="label"`) and
`namespace` a bare namespace name (`namespace="tickets"`). Anything else is refused
when the spec is built (`CaptureConfigError` naming the field): a typo such as
`jsn:stars` or `account="user_id"` (for `g:user_id`) would otherwise be sent as the
same literal text for every request. Sources are compiled once, when the spec is
built, so a request only runs the pre-parsed lookups.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

import flask

from feedbackguard.events import Kind

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
KIND_NAMES = frozenset(get_args(Kind))
NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
"""What `FeedbackEvent.namespace` accepts."""
_BARE_CONSTANTS = frozenset({"kind", "namespace"})
"""Spec keys whose bare text is a constant (checked when the spec is built)."""
# At most this many keys of a JSON object are compared with a path that found nothing
# (the body is the end user's: the comparison must stay cheap whatever they send).
SUGGEST_MAX_KEYS = 32
SUGGEST_CUTOFF = 0.75


class CaptureConfigError(ValueError):
    """A feedback endpoint's spec or the route table is wrong; the message names the
    entry, the field and what to write instead."""


@dataclass(frozen=True)
class JsonSource:
    """A compiled `json:` source: the path, and a getter that walks it."""

    text: str
    parts: tuple[str | int, ...]

    def __call__(self, request: flask.Request, node: Any) -> Any:
        for part in self.parts:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(node, dict):
                node = node.get(str(part))
            else:
                return None
        return node

    def near_miss(self, body: Any) -> str | None:
        """When this path found nothing in `body`: a key of the object where the walk
        stopped that looks like the missing one (a misspelt path), else None."""
        node = body
        for part in self.parts:
            if not isinstance(node, dict):
                return None
            key = str(part)
            if key not in node:
                candidates = [k for _, k in zip(range(SUGGEST_MAX_KEYS), node, strict=False)]
                close = difflib.get_close_matches(key, candidates, n=1, cutoff=SUGGEST_CUTOFF)
                return close[0] if close else None
            node = node[key]
        return None


def _json_path(path: str) -> Getter:
    if not path or any(not p for p in path.split(".")):
        raise ValueError("a JSON path is dot-separated keys or indexes, e.g. json:a.b.0")
    return JsonSource(path, tuple(int(p) if p.isdigit() else p for p in path.split(".")))


def _named(what: str, make: Callable[[str], Getter]) -> Callable[[str], Getter]:
    def build(name: str) -> Getter:
        if not name.strip():
            raise ValueError(f"{what} needs a name after the prefix")
        return make(name)

    return build


def _form_field(name: str) -> Getter:
    # The form was parsed within the body bound before the getters run (request.py).
    return lambda request, body: request.form.get(name)


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


_MAKERS: dict[str, Callable[[str], Getter]] = {
    "json:": _json_path,
    "form:": _named("form:", _form_field),
    "view:": _named("view:", _view_arg),
    "g:": _named("g:", _g_attr),
    "header:": _named("header:", _header),
    "const:": _constant,
}
PREFIXES = tuple(_MAKERS)


def compile_source(source: Any, key: str = "value") -> Getter:
    """Turn the source of spec key `key` (see the module docstring) into a getter;
    `ValueError` saying why when it is not a source."""
    if callable(source):
        return _call(source)
    if not isinstance(source, str):
        return _constant(source)
    for prefix, make in _MAKERS.items():
        if source.startswith(prefix):
            getter = make(source[len(prefix) :])
            if prefix == "const:" and key in _BARE_CONSTANTS:
                _check_constant(key, source[len(prefix) :])
            return getter
    if key in _BARE_CONSTANTS and ":" not in source:
        _check_constant(key, source)
        return _constant(source)
    raise ValueError(_not_a_source(source))


def _check_constant(key: str, text: str) -> None:
    if key == "kind" and text not in KIND_NAMES:
        close = difflib.get_close_matches(text, sorted(KIND_NAMES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{text!r} is not a kind{hint}; kinds: {', '.join(sorted(KIND_NAMES))}")
    if key == "namespace" and not NAMESPACE_NAME.match(text):
        raise ValueError(f"{text!r} is not a namespace name ([A-Za-z0-9_.-], 1 to 64 chars)")


def _not_a_source(source: str) -> str:
    head, colon, _ = source.partition(":")
    if colon:
        close = difflib.get_close_matches(head + ":", PREFIXES, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        why = f"unknown source prefix {head + ':'!r}{hint}"
    else:
        why = "no source prefix"
    return (
        f"{source!r} is not a field source: {why}; a source starts with "
        f"{', '.join(PREFIXES)} (write 'const:{source}' for constant text)"
    )


@dataclass(frozen=True)
class FeedbackSpec:
    """Where each event field of one feedback endpoint comes from, pre-compiled.

    `view_args` are the URL variables the spec reads (checked against the endpoint's
    rules once the app's routes are registered); `json_sources` the `json:` paths by
    event field (capture logs a path that found nothing beside a similar key)."""

    getters: tuple[tuple[str, Getter], ...]
    reads_json: bool
    reads_form: bool = False
    view_args: frozenset[str] = frozenset()
    supplies_account_age: bool = False

    @property
    def json_sources(self) -> list[tuple[str, JsonSource]]:
        return [(name, get) for name, get in self.getters if isinstance(get, JsonSource)]

    @classmethod
    def build(cls, spec: Mapping[str, Any], where: str = "feedback spec") -> FeedbackSpec:
        """Compile `spec`; `CaptureConfigError` naming `where` and the field when a key
        is unknown, a required one is missing or a source is not one."""
        unknown = set(spec) - set(SPEC_FIELDS)
        if unknown:
            raise CaptureConfigError(
                f"{where}: unknown feedback spec keys {sorted(unknown)}; "
                f"expected {sorted(SPEC_FIELDS)}"
            )
        for required in REQUIRED:
            if required not in spec:
                raise CaptureConfigError(f"{where}: feedback spec needs a source for {required!r}")
        getters = []
        for key, source in spec.items():
            try:
                getters.append((SPEC_FIELDS[key], compile_source(source, key)))
            except ValueError as exc:
                raise CaptureConfigError(f"{where}: {key}: {exc}") from None
        texts = [v for v in spec.values() if isinstance(v, str)]
        return cls(
            getters=tuple(getters),
            reads_json=any(v.startswith("json:") for v in texts),
            reads_form=any(v.startswith("form:") for v in texts),
            view_args=frozenset(v[len("view:") :] for v in texts if v.startswith("view:")),
            supplies_account_age="account_created_at" in spec,
        )
