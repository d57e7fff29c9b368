"""Admin endpoints for the policy: read it, replace or patch it, its history with diffs,
rollback, and the dry run of a proposed policy over recent decisions."""

from __future__ import annotations

from typing import Any

import pydantic

from feedbackguard.policy.store import PolicyVersion, UnknownPolicyVersion
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin import policyops
from feedbackguard.web.admin.api import ApiError, Registry, invalid
from feedbackguard.web.admin.context import actor, policies
from feedbackguard.web.context import runtime

api = Registry()


def _version_out(v: PolicyVersion) -> m.PolicyVersionOut:
    return m.PolicyVersionOut(
        version=v.version,
        author=v.author,
        created_at=v.created_at,
        note=v.note,
        policy=policyops.as_json(v.policy),
    )


def _validated(whole: dict[str, Any] | None, patch: dict[str, Any] | None) -> Any:
    try:
        return policyops.proposed(policies(), whole, patch)
    except pydantic.ValidationError as exc:
        raise invalid(exc, prefix="policy") from exc


@api.endpoint("GET", "/v1/policy", role="viewer", out=m.PolicyVersionOut)
def get_policy() -> m.PolicyVersionOut:
    """The policy in force."""
    return _version_out(policies().current())


@api.endpoint("PUT", "/v1/policy", role="admin", out=m.PolicyVersionOut, body=m.PolicyReplace)
def replace_policy(body: m.PolicyReplace) -> m.PolicyVersionOut:
    """Replace the whole policy (a new version)."""
    policy = _validated(body.policy, None)
    return _version_out(policies().set(policy, author=actor(), note=body.note))


@api.endpoint("PATCH", "/v1/policy", role="admin", out=m.PolicyVersionOut, body=m.PolicyPatch)
def patch_policy(body: m.PolicyPatch) -> m.PolicyVersionOut:
    """Deep-merge a patch into the policy (a new version)."""
    policy = _validated(None, body.patch)
    return _version_out(policies().set(policy, author=actor(), note=body.note))


class HistoryQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    limit: int = pydantic.Field(50, ge=1, le=1000)


@api.endpoint(
    "GET", "/v1/policy/history", role="viewer", out=m.PolicyHistoryOut, query=HistoryQuery
)
def policy_history(query: HistoryQuery) -> m.PolicyHistoryOut:
    """Policy versions, newest first, each with its diff to the previous one."""
    versions = policies().history()[: query.limit + 1]
    out = []
    for i, v in enumerate(versions[: query.limit]):
        before = versions[i + 1] if i + 1 < len(versions) else None
        out.append(
            m.PolicyHistoryEntry(
                version=v.version,
                author=v.author,
                created_at=v.created_at,
                note=v.note,
                diff=policyops.diff(
                    policyops.as_json(before.policy) if before else None,
                    policyops.as_json(v.policy),
                ),
            )
        )
    return m.PolicyHistoryOut(versions=out)


@api.endpoint(
    "POST",
    "/v1/policy/rollback",
    role="admin",
    out=m.PolicyVersionOut,
    body=m.PolicyRollback,
    errors=(404,),
)
def rollback_policy(body: m.PolicyRollback) -> m.PolicyVersionOut:
    """Put a past version back in force (as a new version)."""
    try:
        return _version_out(policies().rollback(body.version, author=actor()))
    except UnknownPolicyVersion as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@api.endpoint("POST", "/v1/policy/dry-run", role="viewer", out=m.DryRunOut, body=m.DryRunRequest)
def dry_run(body: m.DryRunRequest) -> m.DryRunOut:
    """How recent decisions would change under a proposed policy (nothing is written)."""
    if body.policy is not None and body.patch is not None:
        raise ApiError(422, "invalid", "give policy or patch, not both")
    policy = _validated(body.policy, body.patch)
    r = runtime().redis
    found = policyops.dry_run(r, body.namespace, policy, body.hours, body.max_events)
    return m.DryRunOut(
        namespace=body.namespace,
        current_version=policies().current().version,
        examined=found.examined,
        skipped_moderated=found.skipped_moderated,
        changed=found.changed,
        transitions=[
            m.Transition(old=old, new=new, count=n)
            for (old, new), n in sorted(found.transitions.items())
        ],
        truncated=found.truncated,
        method=policyops.DRY_RUN_METHOD,
    )
