"""Admin endpoints for the policy: read it, replace or patch it, its history with diffs,
rollback, and the dry run of a proposed policy over recent decisions."""

from __future__ import annotations

from typing import Any

import pydantic

from feedbackguard.policy import Policy, PolicyTooLarge
from feedbackguard.policy.store import PolicyVersion, UnknownPolicyVersion, UnnotedDisable
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin import policyops
from feedbackguard.web.admin.api import ApiError, Registry, invalid
from feedbackguard.web.admin.context import actor, policies
from feedbackguard.web.context import runtime

api = Registry()


def _version_out(v: PolicyVersion, disables: list[str] | None = None) -> m.PolicyVersionOut:
    return m.PolicyVersionOut(
        version=v.version,
        author=v.author,
        created_at=v.created_at,
        note=v.note,
        policy=policyops.as_json(v.policy),
        disables=disables or [],
    )


def _validated(whole: dict[str, Any] | None, patch: dict[str, Any] | None) -> Policy:
    try:
        return policyops.proposed(policies(), whole, patch)
    except pydantic.ValidationError as exc:
        raise invalid(exc, prefix="policy") from exc
    except PolicyTooLarge as exc:
        raise ApiError(413, "policy_too_large", str(exc)) from exc


def _put_in_force(policy: Policy, note: str) -> m.PolicyVersionOut:
    """A new version; a change turning defences off needs a note (422 otherwise)."""
    disabled = policyops.disabled_by(policies(), policy)
    try:
        version = policies().set(policy, author=actor(), note=note, note_disables=True)
    except UnnotedDisable as exc:
        detail = [m.FieldError(loc="note", msg=str(exc), type="note_required")]
        raise ApiError(422, "note_required", str(exc), detail) from exc
    except PolicyTooLarge as exc:
        raise ApiError(413, "policy_too_large", str(exc)) from exc
    return _version_out(version, disabled)


@api.endpoint("GET", "/v1/policy", role="viewer", out=m.PolicyVersionOut)
def get_policy() -> m.PolicyVersionOut:
    """The policy in force."""
    return _version_out(policies().current())


@api.endpoint(
    "PUT",
    "/v1/policy",
    role="admin",
    out=m.PolicyVersionOut,
    body=m.PolicyReplace,
    errors=(413,),
)
def replace_policy(body: m.PolicyReplace) -> m.PolicyVersionOut:
    """Replace the whole policy (a new version)."""
    return _put_in_force(_validated(body.policy, None), body.note)


@api.endpoint(
    "PATCH",
    "/v1/policy",
    role="admin",
    out=m.PolicyVersionOut,
    body=m.PolicyPatch,
    errors=(413,),
)
def patch_policy(body: m.PolicyPatch) -> m.PolicyVersionOut:
    """Deep-merge a patch into the policy (a new version)."""
    return _put_in_force(_validated(None, body.patch), body.note)


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


@api.endpoint(
    "POST",
    "/v1/policy/dry-run",
    role="viewer",
    out=m.DryRunOut,
    body=m.DryRunRequest,
    errors=(413,),
)
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
