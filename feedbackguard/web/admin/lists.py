"""Admin endpoints for the allow / deny lists of IPs, subnets and devices."""

from __future__ import annotations

from feedbackguard.policy import lists
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import ApiError, Registry
from feedbackguard.web.admin.context import actor
from feedbackguard.web.context import runtime

api = Registry()


def _kind(kind: str) -> lists.Kind:
    try:
        return lists.normalise_kind(kind)
    except lists.InvalidEntry as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@api.endpoint("GET", "/v1/lists/{kind}", role="viewer", out=m.ListOut)
def get_list(kind: str) -> m.ListOut:
    """Entries of the ip, subnet or device list."""
    k = _kind(kind)
    found = lists.entries(runtime().redis, k)
    return m.ListOut(
        kind=k,
        entries=[m.ListEntryOut(kind=k, value=v, **e) for v, e in sorted(found.items())],
    )


@api.endpoint("POST", "/v1/lists/{kind}", role="admin", out=m.ListEntryOut, body=m.ListEntryIn)
def put_list_entry(kind: str, body: m.ListEntryIn) -> m.ListEntryOut:
    """Allow or deny an IP, subnet or device."""
    k = _kind(kind)
    r = runtime().redis
    try:
        value = lists.put(r, k, body.value, body.action, actor=actor(), note=body.note)
    except lists.InvalidEntry as exc:
        raise ApiError(
            422, "invalid", str(exc), [m.FieldError(loc="value", msg=str(exc), type="value_error")]
        ) from exc
    return m.ListEntryOut(kind=k, value=value, **lists.entries(r, k)[value])


@api.endpoint("POST", "/v1/lists/{kind}/remove", role="admin", out=m.RemovedOut, body=m.ListRemove)
def remove_list_entry(kind: str, body: m.ListRemove) -> m.RemovedOut:
    """Remove an entry from a list."""
    k = _kind(kind)
    try:
        removed = lists.remove(runtime().redis, k, body.value, actor=actor())
    except lists.InvalidEntry as exc:
        raise ApiError(
            422, "invalid", str(exc), [m.FieldError(loc="value", msg=str(exc), type="value_error")]
        ) from exc
    return m.RemovedOut(removed=removed)
