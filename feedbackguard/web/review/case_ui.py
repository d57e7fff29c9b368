"""The review pages for cases: the queue of cases in triage order, a case with its
evidence, and the plain form posts behind claim next, decide (approve, reject, split)
and undo. Every page and form carries the queue's filters, so a decision keeps them;
after a decision the next case (same filters) opens, with an Undo for the one just
decided. The static script adds the keyboard on top; everything works without it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pydantic
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from feedbackguard.graph.analysis import span_text
from feedbackguard.pipeline import ledger
from feedbackguard.review import cases, casework, evidence, queue
from feedbackguard.web import auth
from feedbackguard.web.context import runtime
from feedbackguard.web.review import ui
from feedbackguard.web.review.case_api import CaseFilterArgs, over_budget_ids, status_json

UNDO_CATEGORY = "undocase:"
"""A flashed message with this category prefix carries the action id to undo."""


def filters_of(values: Any) -> CaseFilterArgs:
    """The case filters among request values (unknown and empty ones ignored)."""
    known = CaseFilterArgs.model_fields
    try:
        return CaseFilterArgs.model_validate(
            {k: v for k, v in values.items() if k in known and v != ""}
        )
    except pydantic.ValidationError:
        abort(400, description="bad filter")


def item_link(item_id: str) -> str | None:
    """Where the product shows the item (settings `review_item_url`), or None."""
    template = runtime().settings.review_item_url
    return template.replace("{item}", quote(item_id, safe="")) if template else None


def age_text(seconds: float) -> str:
    """How long something has waited ("0 s" under a second)."""
    return span_text(seconds) if seconds >= 1 else "0 s"


def register(bp: Blueprint) -> None:
    bp.add_app_template_global(item_link, "item_link")
    bp.add_app_template_filter(span_text, "span")
    bp.add_app_template_filter(age_text, "age")

    @bp.get("/")
    def queue_page() -> Any:
        principal = ui.principal_or_login("viewer")
        if not isinstance(principal, auth.Principal):
            return principal
        rt = runtime()
        r = rt.redis
        filters = filters_of(request.args)
        over_view = request.args.get("view") == "over"
        cases.catch_up(r, filters.namespace)
        next_cursor = None
        if over_view:
            ids, order = over_budget_ids(filters.namespace), cases.order(r, filters.namespace)
        else:
            try:
                found = cases.page(
                    r,
                    filters.namespace,
                    filters.filters(),
                    cursor=request.args.get("cursor") or None,
                    limit=rt.settings.review_page_size,
                    budget=rt.settings.review_scan_budget,
                )
            except ValueError:
                abort(400, description="bad cursor")
            ids, order, next_cursor = found.ids, found.order, found.cursor
        return render_template(
            "review/cases.html",
            principal=principal,
            rows=[c for c in cases.load(r, filters.namespace, ids) if c is not None],
            filters=filters,
            query=filters.query(),
            namespace=filters.namespace,
            order=order,
            over_view=over_view,
            next_cursor=next_cursor,
            codes=queue.reason_codes(r, filters.namespace),
            status=status_json(filters.namespace),
            status_clock=ledger.clock(r, filters.namespace),
        )

    @bp.get("/case/<case_id>")
    def case_page(case_id: str) -> Any:
        principal = ui.principal_or_login("viewer")
        if not isinstance(principal, auth.Principal):
            return principal
        filters = filters_of(request.args)
        r = runtime().redis
        case = cases.get(r, filters.namespace, case_id)
        if case is None:
            abort(404)
        return render_template(
            "review/case.html",
            principal=principal,
            ev=evidence.gather_case(r, filters.namespace, case),
            case=case,
            filters=filters,
            query=filters.query(),
            namespace=filters.namespace,
            tl_w=evidence.TIMELINE_W,
            tl_h=evidence.TIMELINE_H,
            tl_axis=evidence.TIMELINE_AXIS,
        )

    @bp.post("/cases/claim")
    def claim_case_form() -> Any:
        principal = ui.principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        ui.check_csrf()
        filters = filters_of(request.form)
        skip = request.form.get("skip", "")[:100]
        if skip:  # moving on without deciding: the case is free for the others
            cases.release(runtime().redis, filters.namespace, skip, principal.name)
        return _next_case(principal, filters, skip)

    @bp.post("/case/<case_id>/decide")
    def decide_case_form(case_id: str) -> Any:
        principal = ui.principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        ui.check_csrf()
        filters = filters_of(request.form)
        action = casework.ACTIONS.get(request.form.get("action", ""))
        if action is None:
            abort(400, description="approve, reject or split")
        if action != "reject" and request.form.get("confirm") != "yes":
            flash("Tick the confirmation to approve: approved events reach the training data.")
            return redirect(url_for(".case_page", case_id=case_id, **filters.query()))
        version = request.form.get("version", "")
        rt = runtime()
        try:
            done = casework.decide(
                rt.pipeline,
                filters.namespace,
                case_id,
                principal.name,
                action,
                keep_s=rt.settings.review_undo_s,
                approve_ids=request.form.getlist("approve_event"),
                approve_accounts=request.form.getlist("approve_account"),
                seen_version=int(version) if version.isdigit() else None,
                note=request.form.get("note", ""),
            )
        except casework.CaseError as exc:
            flash(str(exc))
            return redirect(url_for(".case_page", case_id=case_id, **filters.query()))
        flash(_summary(done), UNDO_CATEGORY + done.action_id)
        return _next_case(principal, filters)

    @bp.post("/cases/undo")
    def undo_case_form() -> Any:
        principal = ui.principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        ui.check_csrf()
        filters = filters_of(request.form)
        rt = runtime()
        try:
            result = casework.undo(
                rt.pipeline,
                filters.namespace,
                request.form.get("action_id", "")[:100],
                principal.name,
                window_s=rt.settings.review_undo_s,
            )
        except casework.CaseError as exc:
            flash(str(exc))
            return redirect(url_for(".queue_page", **filters.query()))
        flash(
            f"Undone: {len(result.undone)} events of case {result.case_id} back in review"
            + (
                f"; {len(result.refused)} decided again since, left as they are."
                if result.refused
                else "."
            )
        )
        cases.lease(
            rt.redis, filters.namespace, result.case_id, principal.name, rt.settings.review_lease_s
        )
        return redirect(url_for(".case_page", case_id=result.case_id, **filters.query()))


def _next_case(principal: auth.Principal, filters: CaseFilterArgs, skip: str = "") -> Any:
    """Claim the next case matching the filters and open it (the queue when none)."""
    rt = runtime()
    cases.catch_up(rt.redis, filters.namespace)
    found = cases.claim(
        rt.redis,
        filters.namespace,
        principal.name,
        rt.settings.review_lease_s,
        filters.filters(),
        budget=rt.settings.review_scan_budget,
        skip=skip,
    )
    if found is None:
        flash("No case left to claim with these filters.")
        return redirect(url_for(".queue_page", **filters.query()))
    return redirect(url_for(".case_page", case_id=found, **filters.query()))


def _summary(done: casework.CaseAction) -> str:
    parts = []
    if done.approved:
        parts.append(f"approved {len(done.approved)}")
    if done.rejected:
        parts.append(f"rejected {len(done.rejected)}")
    return f"Case {done.case_id}: {' and '.join(parts) or 'nothing left to decide'}."
