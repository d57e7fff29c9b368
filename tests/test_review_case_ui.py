"""The review pages by case: the queue of cases (harm, why, budget), a case page with
its evidence, decisions by plain form that keep the filters, undo, and the moderator's
screen fixes (legend, a real timeline, a confirmed "approve all", reported content)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import redis
from flask import Flask
from flask.testing import FlaskClient

from feedbackguard import accounts
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.policy import Policy, Review
from feedbackguard.reasons import Reason
from feedbackguard.review import budget, cases, evidence
from feedbackguard.store import Store
from feedbackguard.web.context import EXTENSION_KEY
from tests.conftest import T0
from tests.review_helpers import NS, log_in, put_in_review

MakeEvent = Callable[..., FeedbackEvent]
GROUP = Reason("coordination.lockstep", "40 accounts acted in lockstep within 3 s", 0.6, "g:1")


def link_items(app: Flask) -> None:
    """Set `review_item_url` on the app's runtime."""
    current = app.extensions[EXTENSION_KEY]
    app.extensions[EXTENSION_KEY] = replace(
        current,
        settings=current.settings.model_copy(
            update={"review_item_url": "https://product.example/posts/{item}"}
        ),
    )


def statuses(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> set[str]:
    return {rec.decision.status for rec in ledger.load(r, NS, [e.event_id for e in events]) if rec}


def swarm_case(r: redis.Redis[bytes], make_event: MakeEvent, n: int = 12) -> list[FeedbackEvent]:
    swarm = [
        make_event(
            at=float(i),
            account_id=f"bot-{i % 6}",
            item_id=f"post-{i % 3}",
            ip="203.0.113.7",
            kind="report",
            value="spam",
            payload={"text": f"the reported post {i % 3}"},
        )
        for i in range(n)
    ]
    put_in_review(r, swarm, [GROUP], risk=0.6)
    return swarm


def test_the_queue_lists_cases_with_harm_why_and_budget(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    swarm_case(r, make_event)
    put_in_review(r, [make_event(account_id="loner")], [Reason("outlier", "odd hours", 0.55)])
    log_in(review_client)
    page = review_client.get("/review/").get_data(as_text=True)
    rows = re.findall(r'<tr class="case-row"', page)
    assert len(rows) == 2
    assert "no event carries a harm estimate yet" in page
    assert page.index("coordination.lockstep group") < page.index("loner")  # 12 events first
    assert "40 accounts acted in lockstep within 3 s" in page
    assert "capacity: no limit" in page
    assert "over budget: 0" in page


def test_a_case_page_shows_its_evidence_once(
    review_app: Flask, review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    swarm = swarm_case(r, make_event)
    link_items(review_app)
    log_in(review_client)
    case_id = cases.cases_of(r, NS, [swarm[0].event_id])[0]
    page = review_client.get(f"/review/case/{case_id}").get_data(as_text=True)
    assert "12 from 6 accounts" in page
    assert page.count('name="approve_account"') == 6
    assert "203.0.113.7" in page  # the IP every member shares
    assert "the reported post 1" in page  # the reported content
    assert 'class="timeline-svg"' in page
    assert 'class="tick"' in page  # a time axis with labels
    assert 'href="https://product.example/posts/post-1"' in page


def test_rejecting_a_case_by_form_opens_the_next_case_with_the_same_filters(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    make_event: MakeEvent,
    store: Store,
) -> None:
    swarm = swarm_case(r, make_event)
    other = [make_event(account_id="x1")]
    put_in_review(r, other, [Reason("coordination.lockstep", "d", 0.6, "g:2")])
    token = log_in(review_client)
    first = cases.cases_of(r, NS, [swarm[0].event_id])[0]
    case = cases.get(r, NS, first)
    assert case is not None
    resp = review_client.post(
        f"/review/case/{first}/decide",
        data={
            "csrf_token": token,
            "namespace": NS,
            "kind": "group",
            "action": "reject",
            "version": str(case.version),
        },
    )
    assert resp.status_code == 302
    second = cases.cases_of(r, NS, [other[0].event_id])[0]
    assert resp.headers["Location"].endswith(f"/review/case/{second}?kind=group&namespace={NS}")
    assert statuses(r, swarm) == {"rejected"}
    page = review_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"Case {first}: rejected 12." in page
    action = re.search(r'name="action_id" value="(\d+)"', page)
    assert action is not None
    undone = review_client.post(
        "/review/cases/undo",
        data={"csrf_token": token, "namespace": NS, "kind": "group", "action_id": action[1]},
    )
    assert undone.headers["Location"].endswith(f"/review/case/{first}?kind=group&namespace={NS}")
    assert statuses(r, swarm) == {"review"}
    assert store.count() == 0


def test_approving_a_case_needs_the_confirmation(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent, store: Store
) -> None:
    swarm = swarm_case(r, make_event)
    token = log_in(review_client)
    case_id = cases.cases_of(r, NS, [swarm[0].event_id])[0]
    case = cases.get(r, NS, case_id)
    assert case is not None
    page = review_client.get(f"/review/case/{case_id}").get_data(as_text=True)
    assert "Approve all 12 events…" in page
    form = {"csrf_token": token, "action": "approve", "version": str(case.version)}
    review_client.post(f"/review/case/{case_id}/decide", data=form)
    assert statuses(r, swarm) == {"review"}
    review_client.post(f"/review/case/{case_id}/decide", data={**form, "confirm": "yes"})
    assert statuses(r, swarm) == {"admitted"}
    assert store.count() == 12


def test_a_split_by_form_approves_the_ticked_accounts_only(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent, store: Store
) -> None:
    swarm = swarm_case(r, make_event)
    token = log_in(review_client)
    case_id = cases.cases_of(r, NS, [swarm[0].event_id])[0]
    case = cases.get(r, NS, case_id)
    assert case is not None
    review_client.post(
        f"/review/case/{case_id}/decide",
        data={
            "csrf_token": token,
            "action": "split",
            "confirm": "yes",
            "version": str(case.version),
            "approve_account": ["bot-0"],
        },
    )
    fine = [e for e in swarm if e.account_id == "bot-0"]
    assert statuses(r, fine) == {"admitted"}
    assert statuses(r, [e for e in swarm if e.account_id != "bot-0"]) == {"rejected"}
    assert store.count() == len(fine)


def test_an_approval_of_a_case_that_grew_since_it_was_shown_is_refused(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    swarm = swarm_case(r, make_event)
    token = log_in(review_client)
    case_id = cases.cases_of(r, NS, [swarm[0].event_id])[0]
    case = cases.get(r, NS, case_id)
    assert case is not None
    late = [make_event(account_id="bot-9")]
    put_in_review(r, late, [GROUP])
    resp = review_client.post(
        f"/review/case/{case_id}/decide",
        data={
            "csrf_token": token,
            "action": "approve",
            "confirm": "yes",
            "version": str(case.version),
        },
        follow_redirects=True,
    )
    assert "changed since it was shown" in resp.get_data(as_text=True)
    assert statuses(r, [*swarm, *late]) == {"review"}


def test_the_over_budget_view_lists_cases_given_the_safe_default(
    review_client: FlaskClient, r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    pipeline.policies.set(
        Policy.default().model_copy(update={"review": Review(cases_per_day=10)}), author="t"
    )
    put_in_review(r, [make_event(at=0.0, account_id="stale")])
    budget.enforce(pipeline, NS, now=T0.timestamp() + 86400)
    log_in(review_client)
    page = review_client.get("/review/").get_data(as_text=True)
    assert "over budget: 1" in page
    assert "capacity: 10 cases a day" in page
    over = review_client.get("/review/?view=over").get_data(as_text=True)
    assert "stale" in over
    case_id = re.search(r'href="/review/case/(\d+)', over)
    assert case_id is not None
    case_page = review_client.get(f"/review/case/{case_id[1]}").get_data(as_text=True)
    assert "got the safe default" in case_page
    assert 'id="case-form"' in case_page  # it can still be decided


def test_the_cluster_graph_has_a_legend_and_approve_all_asks_for_confirmation(
    review_client: FlaskClient, r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    swarm = [make_event(account_id=f"s{i}") for i in range(4)]
    put_in_review(r, swarm)
    accounts.replace_findings(
        r,
        NS,
        [("s0", {"risk": 0.7, "reasons": [], "clusters": ["c1"]})],
        [
            (
                "c1",
                {
                    "members": ["s0", "s1", "s2", "s3"],
                    "items": ["item-0"],
                    "code": "x",
                    "timeline": {"start": 0.0, "end": 3.0, "bucket_s": 3600, "counts": [[0.0, 4]]},
                },
            )
        ],
    )
    token = log_in(review_client)
    page = review_client.get(f"/review/item/{swarm[0].event_id}").get_data(as_text=True)
    assert 'class="legend"' in page
    assert "this account" in page
    assert "items they share" in page
    assert "Approve all 4…" in page
    review_client.post(
        "/review/bulk",
        data={"scope": "cluster", "target": "c1", "action": "approve", "csrf_token": token},
    )
    assert statuses(r, swarm) == {"review"}  # not without the confirmation


def test_a_timeline_of_one_burst_is_a_bar_not_a_box() -> None:
    found = evidence.time_axis([(3600.0, 40)], bucket_s=3600.0)
    plot = evidence.TIMELINE_W - 2 * evidence.TIMELINE_PAD
    assert len(found.bars) == 1
    assert found.bars[0]["w"] < plot / 2
    assert len(found.ticks) == 3
    assert found.span == "1.0 h"
    assert evidence.times_axis([10.0, 10.4, 11.0]) is not None


def test_a_report_shows_the_reported_content_and_the_items_link(
    review_app: Flask, review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    event = make_event(
        kind="report", item_id="post 7/é", value="abuse", payload={"text": "buy cheap pills"}
    )
    put_in_review(r, [event])
    link_items(review_app)
    log_in(review_client)
    page = review_client.get(f"/review/item/{event.event_id}").get_data(as_text=True)
    assert "reported content" in page
    assert "buy cheap pills" in page
    assert 'href="https://product.example/posts/post%207%2F%C3%A9"' in page
