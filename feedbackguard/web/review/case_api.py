"""The review JSON API for cases: list (triage order), one case, claim, decide (approve,
reject, split), undo, and how far behind review is.

Reads need the viewer role, actions the moderator role; a session caller sends the
CSRF token (`params.action_body`). A case conflict (claimed by another moderator,
changed since it was shown) is a 409 naming it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from feedbackguard import keys
from feedbackguard.review import backlog, cases, casework, evidence
from feedbackguard.review.cases import as_json as case_json
from feedbackguard.web.auth import require_role
from feedbackguard.web.context import runtime
from feedbackguard.web.review import params
from feedbackguard.web.review.api import error_response

KINDS: dict[str, cases.Kind] = {"account": "a", "item": "i", "group": "g"}


class CaseFilterArgs(BaseModel):
    """Case filters, from query arguments or a JSON body; they ride along every case
    page and form, so a decision keeps them."""

    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    kind: Literal["account", "item", "group"] | None = None
    reason: params.Reason = None
    account: params.Account = None
    risk_min: params.Risk = 0.0
    risk_max: params.Risk = 1.0

    def filters(self) -> cases.Filters:
        return cases.Filters(
            kind=KINDS[self.kind] if self.kind else None,
            reason=self.reason or None,
            account=self.account or None,
            risk_min=self.risk_min,
            risk_max=self.risk_max,
        )

    def query(self) -> dict[str, Any]:
        """The filters as query arguments (defaults left out)."""
        return {
            k: v
            for k, v in self.model_dump().items()
            if v not in (None, "") and v != type(self).model_fields[k].default
        } | {"namespace": self.namespace}


class CaseListArgs(CaseFilterArgs):
    cursor: params.Cursor = None
    limit: params.Limit = 50


class DecideCaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    action: Literal["approve", "reject", "split"]
    version: int | None = Field(
        None,
        description="The case's version the caller saw: an approval or split is "
        "refused (409) when events joined since.",
    )
    approve_ids: list[str] = Field(default_factory=list, max_length=params.IDS_MAX)
    approve_accounts: list[str] = Field(default_factory=list, max_length=params.IDS_MAX)
    note: params.Note = ""


class UndoCaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    action_id: str = Field(min_length=1, max_length=100)
    note: params.Note = ""


class ClaimCaseBody(CaseFilterArgs):
    pass


def status_json(namespace: str) -> dict[str, Any]:
    rt = runtime()
    capacity = rt.pipeline.policies.current().policy.review.capacity(namespace)
    return asdict(backlog.status(rt.redis, namespace, capacity))


def action_json(done: casework.CaseAction) -> dict[str, Any]:
    return {
        "action_id": done.action_id,
        "case_id": done.case_id,
        "action": done.action,
        "approved": done.approved,
        "rejected": done.rejected,
        "note": done.note,
    }


def register(bp: Blueprint) -> None:
    """Add the case routes to the review blueprint (under `api/`)."""

    @bp.get("/api/cases")
    @require_role("viewer")
    def list_cases() -> Any:
        args = CaseListArgs.model_validate(request.args.to_dict())
        rt = runtime()
        cases.catch_up(rt.redis, args.namespace)
        try:
            found = cases.page(
                rt.redis,
                args.namespace,
                args.filters(),
                cursor=args.cursor,
                limit=args.limit,
                budget=rt.settings.review_scan_budget,
            )
        except ValueError:
            return error_response(400, "invalid", "bad cursor")
        loaded = cases.load(rt.redis, args.namespace, found.ids)
        return jsonify(
            {
                "cases": [case_json(c) for c in loaded if c is not None],
                "next_cursor": found.cursor,
                "order": found.order,
                "status": status_json(args.namespace),
            }
        )

    @bp.get("/api/cases/over-budget")
    @require_role("viewer")
    def over_budget_cases() -> Any:
        namespace = params.query_namespace()
        rt = runtime()
        ids = over_budget_ids(namespace)
        return jsonify({"cases": [case_json(c) for c in cases.load(rt.redis, namespace, ids) if c]})

    @bp.get("/api/cases/<case_id>")
    @require_role("viewer")
    def get_case(case_id: str) -> Any:
        namespace = params.query_namespace()
        r = runtime().redis
        case = cases.get(r, namespace, case_id)
        if case is None:
            return error_response(404, "not_found", "no such case")
        return jsonify({**case_json(case), "event_ids": evidence.case_events(r, namespace, case)})

    @bp.get("/api/status")
    @require_role("viewer")
    def review_status() -> Any:
        namespace = params.query_namespace()
        return jsonify(status_json(namespace))

    @bp.post("/api/cases/claim")
    @require_role("moderator")
    def claim_case() -> Any:
        body = params.action_body(ClaimCaseBody)
        rt = runtime()
        cases.catch_up(rt.redis, body.namespace)
        found = cases.claim(
            rt.redis,
            body.namespace,
            params.principal().name,
            rt.settings.review_lease_s,
            body.filters(),
            budget=rt.settings.review_scan_budget,
        )
        case = cases.get(rt.redis, body.namespace, found) if found else None
        return jsonify(
            {"case": case_json(case) if case else None, "lease_s": rt.settings.review_lease_s}
        )

    @bp.post("/api/cases/<case_id>/decide")
    @require_role("moderator")
    def decide_case(case_id: str) -> Any:
        body = params.action_body(DecideCaseBody)
        rt = runtime()
        try:
            done = casework.decide(
                rt.pipeline,
                body.namespace,
                case_id,
                params.principal().name,
                body.action,
                keep_s=rt.settings.review_undo_s,
                approve_ids=body.approve_ids,
                approve_accounts=body.approve_accounts,
                seen_version=body.version,
                note=body.note,
            )
        except (casework.CaseBusy, casework.CaseChanged) as exc:
            return error_response(409, "conflict", str(exc))
        except casework.CaseError as exc:
            return error_response(404, "not_found", str(exc))
        return jsonify(action_json(done))

    @bp.post("/api/cases/undo")
    @require_role("moderator")
    def undo_case() -> Any:
        body = params.action_body(UndoCaseBody)
        rt = runtime()
        try:
            result = casework.undo(
                rt.pipeline,
                body.namespace,
                body.action_id,
                params.principal().name,
                window_s=rt.settings.review_undo_s,
                note=body.note,
            )
        except casework.CaseError as exc:
            return error_response(409, "conflict", str(exc))
        return jsonify(
            {"case_id": result.case_id, "undone": result.undone, "refused": result.refused}
        )


def over_budget_ids(namespace: str, limit: int = 1000) -> list[str]:
    """Cases given the safe default and not reopened, newest first."""
    r = runtime().redis
    return [raw.decode() for raw in r.zrevrange(keys.case_over(namespace), 0, limit - 1)]
