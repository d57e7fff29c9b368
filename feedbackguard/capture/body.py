"""The request's body, read within bounds: at most `max_body_bytes` (declared or
actually read) and, for JSON, nested at most `max_json_depth` deep, so a hostile body
costs capture neither unbounded memory nor a `RecursionError` (a 500 before the view)."""

from __future__ import annotations

import json
from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BodyTooDeep(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def json_body(request: flask.Request, max_bytes: int, max_depth: int) -> Any:
    """The parsed JSON body, or None when the request is not JSON or the body does not
    parse (as `get_json(silent=True)`). Raises `BodyTooLarge` or `BodyTooDeep`."""
    if not request.is_json:
        return None
    own = request.max_content_length  # the app's MAX_CONTENT_LENGTH, if smaller
    limit = max_bytes if own is None else min(own, max_bytes)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    # Werkzeug stops reading a chunked body (no Content-Length) at this many bytes, so
    # one byte more than allowed tells an oversized body from one exactly at the limit.
    request.max_content_length = limit + 1
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise BodyTooLarge(limit) from exc
    finally:
        request.max_content_length = own
    if len(data) > limit:
        raise BodyTooLarge(limit)
    try:
        body = json.loads(data)
    except RecursionError as exc:
        raise BodyTooDeep(max_depth) from exc
    except ValueError:
        return None
    if deeper_than(body, max_depth):
        raise BodyTooDeep(max_depth)
    return body


def parse_form(request: flask.Request, max_bytes: int) -> None:
    """Parse the request's form body (URL-encoded or multipart; Werkzeug caches it for
    the view) within `max_bytes`. Raises `BodyTooLarge`."""
    own = request.max_content_length
    limit = max_bytes if own is None else min(own, max_bytes)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    request.max_content_length = limit
    try:
        request.form  # noqa: B018 - parsed once, here, under the limit
    except RequestEntityTooLarge as exc:
        raise BodyTooLarge(limit) from exc
    finally:
        request.max_content_length = own


def deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests objects/arrays more than `limit` levels (iteratively: no
    recursion, whatever the depth). A scalar is 0 levels, `{}` or `[]` one."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if not isinstance(node, dict | list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
