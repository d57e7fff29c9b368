"""Admin endpoints for the policy: read it, replace or patch it, its history with diffs,
rollback, and the dry run of a proposed policy over the namespace's recent events."""

from __future__ import annotations

from typing import Any

import pydantic

from feedbackguard.pipeline import dryrun
from feedbackguard.policy import Policy, PolicyTooLarge
from feedbackguard.policy.disables import diff
from feedbackguard.policy.merge import PatchError, SilentReset
from feedbackguard.policy.store import PolicyVersion, UnknownPolicyVersion, UnnotedDisable
from feedbackguard.web.admin import models as m
from feedbackguard.web.admin import policyops
from feedbackguard.web.admin.api import ApiError, Registry, invalid
from feedbackguard.web.admin.context import actor, policies
from feedbackguard.web.context import runtime

api = Registry()


def _version_out(
    v: PolicyVersion, disables: list[str] | None = None, notes: list[str] | None = None
) -> m.PolicyVersionOut:
    return m.PolicyVersionOut(
        version=v.version,
        author=v.author,
        created_at=v.created_at,
        note=v.note,
        policy=policyops.as_json(v.policy),
        disables=disables or [],
        notes=notes or [],
    )


def _validated(whole: dict[str, Any] | None, patch: dict[str, Any] | None) -> Policy:
    try:
        return policyops.proposed(policies(), whole, patch)
    except pydantic.ValidationError as exc:
        raise invalid(exc, prefix="policy") from exc
    except PolicyTooLarge as exc:
        raise ApiError(413, "policy_too_large", str(exc)) from exc
    except SilentReset as exc:
        detail = [
            m.FieldError(
                loc=f"policy.{path}",
                msg=f"left out: would be reset from {old!r} to its default {new!r}",
                type="silent_reset",
            )
            for path, old, new in exc.resets
        ]
        raise ApiError(422, "silent_reset", str(exc), detail) from exc
    except PatchError as exc:
        detail = [m.FieldError(loc=f"patch.{exc.path}", msg=str(exc), type="patch")]
        raise ApiError(422, "invalid", str(exc), detail) from exc


def _put_in_force(policy: Policy, note: str) -> m.PolicyVersionOut:
    """A new version; a change removing defences or limits needs a note (422 otherwise)."""
    before = policies().current().policy
    disabled = policyops.disabled_by(policies(), policy)
    try:
        version = policies().set(policy, author=actor(), note=note, note_disables=True)
    except UnnotedDisable as exc:
        detail = [m.FieldError(loc="note", msg=str(exc), type="note_required")]
        raise ApiError(422, "note_required", str(exc), detail) from exc
    except PolicyTooLarge as exc:
        raise ApiError(413, "policy_too_large", str(exc)) from exc
    probation = dryrun.probation_note(runtime().redis, before, policy)
    return _version_out(version, disabled, [probation] if probation else [])


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
    """Replace the whole policy (a new version). Settings it leaves out take their
    defaults; where that would reset a value in force, it is refused (422
    `silent_reset`, naming each one): PATCH changes part of the policy."""
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
    """Merge a patch into the policy (a new version): objects key by key; rate limits
    by scope and kinds (and window_s when given), feature triggers by name, each entry
    added, updated, or removed with `"remove": true`; other lists replaced."""
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
                diff=diff(
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
    role="admin",  # it replays up to max_events twice: worker-sized CPU, not a read
    out=m.DryRunOut,
    body=m.DryRunRequest,
    errors=(413,),
)
def dry_run(body: m.DryRunRequest) -> m.DryRunOut:
    """What the proposed policy would have done to the namespace's last `hours` of
    events: both policies replayed through the real pipeline on scratch namespaces
    (nothing live is written), compared event by event. It takes as long as two
    replays of those events (docs/benchmarks.md): for long windows use
    `feedbackguard policy dry-run`, or a smaller `max_events`."""
    if body.policy is not None and body.patch is not None:
        raise ApiError(422, "invalid", "give policy or patch, not both")
    policy = _validated(body.policy, body.patch)
    current = policies().current()
    report = dryrun.dry_run(
        runtime().redis,
        body.namespace,
        current,
        policy,
        hours=body.hours,
        max_events=body.max_events,
        batch_size=runtime().settings.batch_size,
    )
    return policyops.dry_run_out(report, current.version)
