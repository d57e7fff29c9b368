"""The review web pages: login, CSRF, plain-form decisions, and attacker text kept inert."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient

from feedbackguard import accounts
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.review import cases
from feedbackguard.store import Store
from tests.review_helpers import NS, PASSWORD, csrf_of, hostile_event, log_in, send_to_review

MakeEvent = Callable[..., FeedbackEvent]

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    "'-alert(1)-'",
    "</title><script>alert(1)</script>",
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "{{7*7}}",
]


def status(r: redis.Redis[bytes], event_id: str) -> str:
    record = ledger.load(r, NS, [event_id])[0]
    assert record is not None
    return record.decision.status


def test_pages_redirect_to_login_without_a_session(review_client: FlaskClient) -> None:
    resp = review_client.get("/review/")
    assert resp.status_code == 302
    assert "/review/login" in resp.headers["Location"]


def test_login_with_a_wrong_password_is_refused(review_client: FlaskClient) -> None:
    token = csrf_of(review_client)
    resp = review_client.post(
        "/review/login", data={"username": "ana", "password": "nope", "csrf_token": token}
    )
    assert resp.status_code == 401
    assert review_client.get("/review/").status_code == 302


def test_login_without_the_csrf_token_is_refused(review_client: FlaskClient) -> None:
    resp = review_client.post("/review/login", data={"username": "ana", "password": PASSWORD})
    assert resp.status_code == 403


def test_a_form_post_without_the_csrf_token_is_refused(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    log_in(review_client)
    resp = review_client.post(
        "/review/decide", data={"event_id": event.event_id, "action": "approve"}
    )
    assert resp.status_code == 403
    assert status(r, event.event_id) == "review"


def test_plain_form_approve_works_without_javascript(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    store: Store,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    token = log_in(review_client)
    resp = review_client.post(
        "/review/decide",
        data={"event_id": event.event_id, "action": "approve", "csrf_token": token},
    )
    assert resp.status_code == 302
    assert status(r, event.event_id) == "admitted"
    assert store.get(event.namespace, event.event_id) is not None


def test_a_viewer_cannot_decide_through_forms(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    token = log_in(review_client, "vi")
    resp = review_client.post(
        "/review/decide",
        data={"event_id": event.event_id, "action": "reject", "csrf_token": token},
    )
    assert resp.status_code == 403


def test_claim_form_opens_the_claimed_item(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    token = log_in(review_client)
    resp = review_client.post("/review/claim", data={"csrf_token": token})
    assert resp.headers["Location"].endswith(f"/review/item/{event.event_id}?namespace=default")
    page = review_client.get(resp.headers["Location"])
    assert b"Claimed by ana" in page.data


def test_cluster_bulk_reject_form(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    swarm = [make_event(account_id=f"s{i}") for i in range(4)]
    send_to_review(pipeline, r, swarm)
    accounts.replace_findings(
        r,
        NS,
        [("s0", {"risk": 0.7, "reasons": [], "clusters": ["c1"]})],
        [("c1", {"members": ["s0", "s1", "s2", "s3"], "items": ["item-0"], "code": "x"})],
    )
    token = log_in(review_client)
    page = review_client.get(f"/review/item/{swarm[0].event_id}")
    assert b"<svg" in page.data
    assert b"Reject all 4 in cluster" in page.data
    review_client.post(
        "/review/bulk",
        data={"scope": "cluster", "target": "c1", "action": "reject", "csrf_token": token},
    )
    assert {status(r, e.event_id) for e in swarm} == {"rejected"}


@pytest.mark.parametrize("payload", XSS)
def test_attacker_text_in_every_field_renders_inert(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
    payload: str,
) -> None:
    event = hostile_event(make_event, payload)
    send_to_review(pipeline, r, [event], code="code" + payload)
    accounts.replace_findings(
        r,
        NS,
        [(event.account_id, {"risk": 0.7, "reasons": [], "clusters": ["c" + payload]})],
        [
            (
                "c" + payload,
                {
                    "members": [event.account_id],
                    "items": [payload],
                    "code": payload,
                    "detail": payload,
                    "timeline": {"counts": [[0.0, 3]]},
                },
            )
        ],
    )
    log_in(review_client)
    case_id = cases.cases_of(r, NS, [event.event_id])[0]
    pages = [
        review_client.get("/review/"),
        review_client.get("/review/events"),
        review_client.get(f"/review/item/{event.event_id}"),
        review_client.get(f"/review/case/{case_id}"),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html
        assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
        assert "<svg/onload" not in html
        assert "<iframe" not in html
        assert not re.search(r"<script(?![^>]*src=\"/review/static/review\.js\")", html)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]


ODD_IDS = ["a/b", "a%2Fb", "with space", "ünï/cödé-😀", "/lead//and/trail/", "q?x=1#f"]


def test_any_valid_event_id_opens_from_the_queue_page(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    events = [make_event(event_id=i) for i in ODD_IDS]
    send_to_review(pipeline, r, events)
    log_in(review_client)
    queue_html = review_client.get("/review/events").get_data(as_text=True)
    links = re.findall(r'class="open" href="([^"]+)"', queue_html)
    assert len(links) == len(events)
    for link in links:
        page = review_client.get(html.unescape(link))
        assert page.status_code == 200, link
    for event in events:
        page = review_client.get(f"/review/item/{quote(event.event_id, safe='/')}")
        assert page.status_code == 200, event.event_id
        assert html.escape(event.event_id) in page.get_data(as_text=True)


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


class _VisibleText(HTMLParser):
    """The text a browser draws: text nodes (titles included), not attribute values."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page)
    return "".join(parser.chunks)


def test_bidi_controls_in_attacker_text_are_shown_escaped(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    payload = "\u202eexe.txt" + BIDI
    event = hostile_event(make_event, payload)
    send_to_review(pipeline, r, [event], code="code" + payload)
    accounts.replace_findings(
        r,
        NS,
        [(event.account_id, {"risk": 0.7, "reasons": [], "clusters": ["c" + payload]})],
        [
            (
                "c" + payload,
                {
                    "members": [event.account_id],
                    "items": [payload],
                    "code": payload,
                    "detail": payload,
                    "timeline": {"counts": [[0.0, 3]]},
                },
            )
        ],
    )
    log_in(review_client)
    case_id = cases.cases_of(r, NS, [event.event_id])[0]
    for url in (
        "/review/",
        "/review/events",
        f"/review/item/{quote(event.event_id, safe='/')}",
        f"/review/case/{case_id}",
    ):
        page = review_client.get(url)
        assert page.status_code == 200
        shown = visible_text(page.get_data(as_text=True))
        assert not set(BIDI) & set(shown), url
        assert "\\u202eexe.txt" in shown
