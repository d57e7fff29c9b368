"""The review JSON API: list, item, claim, release, decide, bulk, undo.

Reads need the viewer role, actions the moderator role (`auth.require_role`). A
caller logged in through the UI's session must also send the CSRF token
(`X-CSRF-Token`); API-key callers need none.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

import pydantic
from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.pipeline import ledger
from feedbackguard.review import moderation, queue
from feedbackguard.web.auth import require_role
from feedbackguard.web.context import runtime
from feedbackguard.web.review import params


class FilterArgs(BaseModel):
    """Queue filters, from query arguments or a JSON body."""

    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    reason: params.Reason = None
    account: params.Account = None
    cluster: str | None = Field(None, max_length=200)
    risk_min: params.Risk = 0.0
    risk_max: params.Risk = 1.0

    def filters(self) -> queue.Filters:
        return queue.Filters(
            reason=self.reason or None,
            account=self.account or None,
            cluster=self.cluster or None,
            risk_min=self.risk_min,
            risk_max=self.risk_max,
        )


class ListArgs(FilterArgs):
    cursor: params.Cursor = None
    limit: params.Limit = 50


class ClaimBody(FilterArgs):
    count: int = Field(1, ge=1, le=100)


class DecideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    ids: list[str] = Field(min_length=1, max_length=params.IDS_MAX)
    action: Literal["approve", "reject"]
    note: params.Note = ""


class BulkBody(BaseModel):
    """Every item in review of an account or a cluster, or a selection of ids."""

    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    action: Literal["approve", "reject"]
    ids: list[str] | None = Field(None, max_length=params.IDS_MAX)
    account: params.Account = None
    cluster: str | None = Field(None, max_length=200)
    note: params.Note = ""


class IdsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: params.Namespace = "default"
    ids: list[str] = Field(min_length=1, max_length=params.IDS_MAX)
    note: params.Note = ""


def error_response(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message, **extra}), status


def item_json(record: ledger.Record, holder: str | None = None) -> dict[str, Any]:
    decision = record.decision
    return {
        "event": record.event.model_dump(mode="json", exclude_none=True),
        "status": decision.status,
        "risk": decision.risk,
        "reasons": [asdict(r) for r in decision.reasons],
        "trail": [d.model_dump(mode="json") for d in record.trail],
        "claimed_by": holder,
    }


def bulk_ids(body: BulkBody) -> list[str]:
    """The ids a bulk action applies to (those in review now)."""
    rt = runtime()
    if body.ids:
        return list(body.ids)
    queue.ensure_indexed(rt.redis, body.namespace, rt.settings.review_sync_s)
    filters = queue.Filters(account=body.account or None, cluster=body.cluster or None)
    if filters.account is None and filters.cluster is None:
        return []
    return queue.all_ids(
        rt.redis, body.namespace, filters, cluster_cache_s=rt.settings.review_cluster_cache_s
    )


def result_json(result: moderation.ModerationResult) -> dict[str, Any]:
    return {
        "approved": result.approved,
        "rejected": result.rejected,
        "not_in_review": result.not_in_review,
        "claimed_by_other": result.claimed_by_other,
    }


def register(bp: Blueprint) -> None:
    """Add the JSON routes to the review blueprint (under `api/`)."""

    @bp.errorhandler(pydantic.ValidationError)
    def invalid(exc: pydantic.ValidationError) -> tuple[Response, int]:
        return error_response(
            400,
            "invalid",
            "invalid request",
            detail=exc.errors(include_url=False, include_input=False),
        )

    @bp.errorhandler(params.CsrfRefused)
    def csrf_refused(exc: params.CsrfRefused) -> tuple[Response, int]:
        return error_response(403, "csrf", "missing or wrong CSRF token")

    @bp.get("/api/items")
    @require_role("viewer")
    def list_items() -> Any:
        args = ListArgs.model_validate(request.args.to_dict())
        rt = runtime()
        queue.ensure_indexed(rt.redis, args.namespace, rt.settings.review_sync_s)
        try:
            found = queue.page(
                rt.redis,
                args.namespace,
                args.filters(),
                cursor=args.cursor,
                limit=args.limit,
                budget=rt.settings.review_scan_budget,
                cluster_cache_s=rt.settings.review_cluster_cache_s,
            )
        except ValueError:
            return error_response(400, "invalid", "bad cursor")
        records = ledger.load(rt.redis, args.namespace, found.ids)
        held = queue.holders(rt.redis, args.namespace, found.ids)
        items = [
            item_json(rec, who) for rec, who in zip(records, held, strict=True) if rec is not None
        ]
        return jsonify({"items": items, "next_cursor": found.cursor})

    @bp.get("/api/items/<event_id:event_id>", merge_slashes=False)
    @require_role("viewer")
    def get_item(event_id: str) -> Any:
        namespace = params.query_namespace()
        rt = runtime()
        record = ledger.load(rt.redis, namespace, [event_id])[0]
        if record is None:
            return error_response(404, "not_found", "no such event")
        return jsonify(item_json(record, queue.holders(rt.redis, namespace, [event_id])[0]))

    @bp.post("/api/claim")
    @require_role("moderator")
    def claim() -> Any:
        body = params.action_body(ClaimBody)
        rt = runtime()
        queue.ensure_indexed(rt.redis, body.namespace, rt.settings.review_sync_s)
        ids = queue.claim(
            rt.redis,
            body.namespace,
            params.principal().name,
            rt.settings.review_lease_s,
            body.filters(),
            count=body.count,
            budget=rt.settings.review_scan_budget,
            cluster_cache_s=rt.settings.review_cluster_cache_s,
        )
        records = ledger.load(rt.redis, body.namespace, ids)
        return jsonify(
            {
                "items": [
                    item_json(rec, params.principal().name) for rec in records if rec is not None
                ],
                "lease_s": rt.settings.review_lease_s,
            }
        )

    @bp.post("/api/release")
    @require_role("moderator")
    def release() -> Any:
        body = params.action_body(IdsBody)
        count = queue.release(runtime().redis, body.namespace, body.ids, params.principal().name)
        return jsonify({"released": count})

    @bp.post("/api/decide")
    @require_role("moderator")
    def decide() -> Any:
        body = params.action_body(DecideBody)
        result = moderation.moderate(
            runtime().pipeline,
            body.namespace,
            body.ids,
            approve=body.action == "approve",
            actor=params.principal().name,
            note=body.note,
        )
        return jsonify(result_json(result))

    @bp.post("/api/bulk")
    @require_role("moderator")
    def bulk() -> Any:
        body = params.action_body(BulkBody)
        if not body.ids and not body.account and not body.cluster:
            return error_response(400, "invalid", "give ids, account or cluster")
        result = moderation.moderate(
            runtime().pipeline,
            body.namespace,
            bulk_ids(body),
            approve=body.action == "approve",
            actor=params.principal().name,
            note=body.note,
        )
        return jsonify(result_json(result))

    @bp.post("/api/undo")
    @require_role("moderator")
    def undo() -> Any:
        body = params.action_body(IdsBody)
        rt = runtime()
        result = moderation.undo(
            rt.pipeline,
            body.namespace,
            body.ids,
            actor=params.principal().name,
            window_s=rt.settings.review_undo_s,
            note=body.note,
        )
        return jsonify({"undone": result.undone, "refused": result.refused})
