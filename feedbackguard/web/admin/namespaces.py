"""Admin endpoints for namespaces: counters, queue depths, lag, and lockdown."""

from __future__ import annotations

from feedbackguard.pipeline.namespaces import info, known
from feedbackguard.policy import lockdown
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin.api import ApiError, Registry
from feedbackguard.web.admin.context import actor
from feedbackguard.web.context import runtime

api = Registry()


def _namespace_out(ns: str) -> m.NamespaceOut:
    found = info(runtime().redis, ns)
    return m.NamespaceOut(**found.__dict__)


@api.endpoint("GET", "/v1/namespaces", role="viewer", out=m.NamespacesOut)
def list_namespaces() -> m.NamespacesOut:
    """Every namespace with its counters, queue depths, lag and lockdown."""
    return m.NamespacesOut(namespaces=[_namespace_out(ns) for ns in known(runtime().redis)])


@api.endpoint("GET", "/v1/namespaces/{namespace}", role="viewer", out=m.NamespaceOut)
def show_namespace(namespace: str) -> m.NamespaceOut:
    """One namespace's counters, queue depths, lag and lockdown."""
    if namespace not in known(runtime().redis):
        raise ApiError(404, "not_found", "no such namespace")
    return _namespace_out(namespace)


@api.endpoint(
    "POST",
    "/v1/namespaces/{namespace}/lockdown",
    role="admin",
    out=m.NamespaceOut,
    body=m.LockdownIn,
)
def set_lockdown(namespace: str, body: m.LockdownIn) -> m.NamespaceOut:
    """Lock a namespace down (every new event to review) or clear it."""
    if not (1 <= len(namespace) <= 128):
        raise ApiError(404, "not_found", "no such namespace")
    lockdown.set_lockdown(runtime().redis, namespace, body.on, actor(), body.reason)
    return _namespace_out(namespace)
