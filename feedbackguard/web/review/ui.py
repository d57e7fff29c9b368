"""The review web pages: login, the list of events in review, an item with its
evidence, and the plain form posts behind approve / reject / claim / bulk / undo of
events (they work without JS; the static script only adds keyboard shortcuts on top).
The queue of cases and case pages are `case_ui`."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

import pydantic
from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from feedbackguard import keys
from feedbackguard.pipeline import ledger
from feedbackguard.review import cases, evidence, moderation, queue
from feedbackguard.web import auth
from feedbackguard.web.context import runtime
from feedbackguard.web.review import security, text
from feedbackguard.web.review.api import FilterArgs

# Ids an "undo" button after a decision carries (they ride in the session cookie).
UNDO_IDS_IN_FLASH = 20


def _namespace() -> str:
    return (request.values.get("namespace") or "default")[:200]


def principal_or_login(role: auth.Role) -> auth.Principal | WerkzeugResponse:
    """The logged-in user with at least `role`, or a redirect to the login page."""
    principal = auth.current_principal()
    if principal is None:
        return redirect(url_for(".login", next=request.full_path))
    if not principal.has(role):
        abort(403)
    return principal


# Control, format, separator and surrogate characters: browsers drop or rewrite some
# of them inside URLs (`/\t/evil.example` becomes `//evil.example`), and a newline in
# a Location header is refused outright.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _safe_next(target: str | None, fallback: str) -> str:
    """`target` when it is a relative path on this site, else `fallback`.

    Followed only when it starts with a single `/`, has no backslash and no control or
    invisible character, and parses with no scheme and no host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def check_csrf() -> None:
    if not security.csrf_ok():
        abort(403, description="missing or wrong CSRF token")


def register(bp: Blueprint) -> None:
    @bp.app_template_global()
    def csrf_token() -> str:
        return security.csrf_token()

    bp.add_app_template_filter(text.bidi_inert, text.FILTER)

    @bp.get("/login")
    def login() -> Any:
        return render_template("review/login.html", next=request.args.get("next", ""))

    @bp.post("/login")
    def login_post() -> Any:
        """Count the attempt (per client and per account name) before the password is
        checked, so parallel guesses past the limit never reach scrypt."""
        check_csrf()
        rt = runtime()
        r = rt.redis
        name = request.form.get("username", "")[:200]
        attempt = auth.count_login(
            r,
            auth.client_id(),
            name,
            limit=rt.settings.auth_fail_limit,
            window_s=rt.settings.auth_fail_window_s,
        )
        if not attempt.allowed:
            refused = make_response(
                render_template(
                    "review/login.html",
                    error="Too many attempts; wait a minute.",
                    next=request.form.get("next", ""),
                ),
                429,
            )
            refused.headers["Retry-After"] = str(attempt.retry_after_s)
            return refused
        principal = auth.verify_password(r, name, request.form.get("password", ""))
        if principal is None:
            return render_template(
                "review/login.html",
                error="Wrong name or password.",
                next=request.form.get("next", ""),
            ), 401
        auth.refund_login(r, attempt)
        auth.start_session(r, principal)
        security.rotate()
        return redirect(_safe_next(request.form.get("next"), url_for(".queue_page")))

    @bp.post("/logout")
    def logout() -> Any:
        """End this session and every other session of the same user."""
        check_csrf()
        principal = auth.current_principal()
        if principal is not None and principal.via == "session":
            auth.revoke_sessions(runtime().redis, principal.name)
        auth.end_session()
        return redirect(url_for(".login"))

    @bp.get("/events")
    def events_page() -> Any:
        principal = principal_or_login("viewer")
        if not isinstance(principal, auth.Principal):
            return principal
        settings = runtime().settings
        r = runtime().redis
        args = {k: v for k, v in request.args.items() if v != ""}
        cursor = args.pop("cursor", None)
        try:
            parsed = FilterArgs.model_validate(args)
        except pydantic.ValidationError:
            abort(400, description="bad filter")
        queue.ensure_indexed(r, parsed.namespace, settings.review_sync_s)
        try:
            found = queue.page(
                r,
                parsed.namespace,
                parsed.filters(),
                cursor=cursor,
                limit=settings.review_page_size,
                budget=settings.review_scan_budget,
                cluster_cache_s=settings.review_cluster_cache_s,
            )
        except ValueError:
            abort(400, description="bad cursor")
        records = ledger.load(r, parsed.namespace, found.ids)
        held = queue.holders(r, parsed.namespace, found.ids)
        rows = [(rec, who) for rec, who in zip(records, held, strict=True) if rec is not None]
        return render_template(
            "review/events.html",
            principal=principal,
            rows=rows,
            filters=parsed,
            namespace=parsed.namespace,
            next_cursor=found.cursor,
            codes=queue.reason_codes(r, parsed.namespace),
            waiting=r.zcard(keys.review(parsed.namespace)),
            here=request.full_path,
        )

    @bp.get("/item/<event_id:event_id>", merge_slashes=False)
    def item_page(event_id: str) -> Any:
        principal = principal_or_login("viewer")
        if not isinstance(principal, auth.Principal):
            return principal
        namespace = _namespace()
        r = runtime().redis
        record = ledger.load(r, namespace, [event_id])[0]
        if record is None:
            abort(404)
        queue.ensure_indexed(r, namespace, runtime().settings.review_sync_s)
        found = evidence.gather(r, namespace, record)
        following = queue.page(r, namespace, queue.Filters(), limit=2)
        next_id = next((i for i in following.ids if i != event_id), None)
        return render_template(
            "review/item.html",
            principal=principal,
            ev=found,
            event=record.event,
            namespace=namespace,
            case_id=cases.cases_of(r, namespace, [event_id])[0],
            next_id=next_id,
            here=request.full_path,
            svg_size=evidence.SVG_SIZE,
            tl_w=evidence.TIMELINE_W,
            tl_h=evidence.TIMELINE_H,
            tl_axis=evidence.TIMELINE_AXIS,
        )

    @bp.post("/claim")
    def claim_form() -> Any:
        principal = principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        check_csrf()
        namespace = _namespace()
        rt = runtime()
        queue.ensure_indexed(rt.redis, namespace, rt.settings.review_sync_s)
        ids = queue.claim(rt.redis, namespace, principal.name, rt.settings.review_lease_s)
        if not ids:
            flash("Nothing left to claim.")
            return redirect(url_for(".queue_page", namespace=namespace))
        return redirect(url_for(".item_page", event_id=ids[0], namespace=namespace))

    @bp.post("/decide")
    def decide_form() -> Any:
        principal = principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        check_csrf()
        namespace = _namespace()
        ids = [i for i in request.form.getlist("event_id") if i][:10_000]
        action = request.form.get("action")
        if action not in ("approve", "reject") or not ids:
            abort(400, description="choose items and approve or reject")
        result = moderation.moderate(
            runtime().pipeline,
            namespace,
            ids,
            approve=action == "approve",
            actor=principal.name,
            note=request.form.get("note", "")[:2000],
        )
        _flash_result(result, action)
        return redirect(
            _safe_next(request.form.get("next"), url_for(".queue_page", namespace=namespace))
        )

    @bp.post("/bulk")
    def bulk_form() -> Any:
        principal = principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        check_csrf()
        namespace = _namespace()
        action = request.form.get("action")
        scope = request.form.get("scope")
        target = request.form.get("target", "")[:500]
        if action not in ("approve", "reject") or scope not in ("account", "cluster") or not target:
            abort(400, description="bulk needs an action, a scope and a target")
        if action == "approve" and request.form.get("confirm") != "yes":
            flash("Tick the confirmation to approve them all: they reach the training data.")
            return redirect(_safe_next(request.form.get("next"), url_for(".queue_page")))
        rt = runtime()
        queue.ensure_indexed(rt.redis, namespace, rt.settings.review_sync_s)
        filters = queue.Filters(
            account=target if scope == "account" else None,
            cluster=target if scope == "cluster" else None,
        )
        ids = queue.all_ids(
            rt.redis, namespace, filters, cluster_cache_s=rt.settings.review_cluster_cache_s
        )
        result = moderation.moderate(
            rt.pipeline,
            namespace,
            ids,
            approve=action == "approve",
            actor=principal.name,
            note=request.form.get("note", "")[:2000],
        )
        _flash_result(result, action)
        return redirect(url_for(".queue_page", namespace=namespace))

    @bp.post("/undo")
    def undo_form() -> Any:
        principal = principal_or_login("moderator")
        if not isinstance(principal, auth.Principal):
            return principal
        check_csrf()
        namespace = _namespace()
        ids = [i for i in request.form.getlist("event_id") if i][:10_000]
        rt = runtime()
        result = moderation.undo(
            rt.pipeline, namespace, ids, principal.name, window_s=rt.settings.review_undo_s
        )
        flash(f"Back in review: {len(result.undone)}; could not undo: {len(result.refused)}.")
        return redirect(
            _safe_next(request.form.get("next"), url_for(".queue_page", namespace=namespace))
        )


def _flash_result(result: moderation.ModerationResult, action: str) -> None:
    done = result.approved if action == "approve" else result.rejected
    flash(
        f"{'Approved' if action == 'approve' else 'Rejected'} {len(done)}.",
        "undo:" + ",".join(done[:UNDO_IDS_IN_FLASH]),
    )
    if result.claimed_by_other:
        flash(f"{len(result.claimed_by_other)} item(s) are claimed by another moderator.")
    if result.not_in_review:
        flash(f"{len(result.not_in_review)} item(s) were no longer in review.")
