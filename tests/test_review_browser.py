"""A moderator in a real headless Chromium: decide a 200-event cluster case with one
key press, undo it, approve it after the confirmation, and the store holds exactly
what was approved; claim, approve and bulk-reject events. Saves screenshots of the
queue of cases, a case page and an item page (to docs/img/ when
FEEDBACKGUARD_TEST_SCREENSHOTS names it)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from werkzeug.serving import make_server

from feedbackguard import accounts
from feedbackguard.checks.base import Reason
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.store import Store
from tests.conftest import T0
from tests.review_helpers import NS, PASSWORD, hostile_event, put_in_review, send_to_review

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots go here when set (docs/img holds the ones the docs show), else to a
# temporary directory: a test run does not touch the checkout.
SCREENSHOTS_ENV = "FEEDBACKGUARD_TEST_SCREENSHOTS"
MakeEvent = Callable[..., FeedbackEvent]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


@pytest.fixture
def live_url(review_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, review_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def launch(p: object) -> object:
    return p.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )


def log_in_page(page: object, live_url: str, where: str = "/review/") -> None:
    page.goto(f"{live_url}{where}")  # type: ignore[attr-defined]
    page.fill("input[name=username]", "ana")  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_moderator_claims_approves_by_keyboard_and_bulk_rejects_a_cluster(
    live_url: str,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    store: Store,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    swarm = [
        make_event(
            at=float(i),
            account_id=f"swarm-{i}",
            item_id="item-target",
            value="<b>not spam</b>",
            model_output={"label": "spam", "confidence": 0.97},
        )
        for i in range(4)
    ]
    honest = [make_event(at=100.0 + i, account_id=f"user-{i}") for i in range(3)]
    send_to_review(pipeline, r, [*swarm, *honest])
    members = [e.account_id for e in swarm]
    accounts.replace_findings(
        r,
        NS,
        [(m, {"risk": 0.8, "reasons": [], "clusters": ["lockstep-1"]}) for m in members],
        [
            (
                "lockstep-1",
                {
                    "code": "coordination.lockstep",
                    "score": 0.8,
                    "detail": "4 accounts labelled the same item within 3 s",
                    "members": members,
                    "items": ["item-target", "item-2", "item-3"],
                    "timeline": {"bucket_s": 60.0, "counts": [[0.0, 1], [60.0, 2], [120.0, 1]]},
                },
            )
        ],
    )
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in_page(page, live_url, "/review/events")
        page.wait_for_selector("table.queue")
        assert page.locator("tr.row").count() == 7

        page.keyboard.press("c")  # claim the oldest: the first swarm item
        page.wait_for_url(f"**/review/item/{swarm[0].event_id}*")
        page.wait_for_selector("svg.cluster-svg")
        assert "Claimed by ana" in page.content()
        page.screenshot(path=str(shots / "review-item.png"), full_page=True)

        page.keyboard.press("a")  # approve it
        page.wait_for_selector("#case-queue")
        assert page.locator("tr.case-row").count() == 6

        page.goto(f"{live_url}/review/item/{swarm[1].event_id}")
        page.click("button.bulk-reject")
        page.wait_for_selector("#case-queue")
        assert page.locator("tr.case-row").count() == 3
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e]
    statuses = {
        rec.event.event_id: rec.decision.status
        for rec in ledger.load(r, NS, [e.event_id for e in swarm])
        if rec is not None
    }
    assert statuses[swarm[0].event_id] == "admitted"
    assert {statuses[e.event_id] for e in swarm[1:]} == {"rejected"}
    assert [item.event.event_id for item in store.iter_rows()] == [swarm[0].event_id]


def _statuses(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> Counter[str]:
    return Counter(
        rec.decision.status for rec in ledger.load(r, NS, [e.event_id for e in events]) if rec
    )


def test_one_key_press_decides_a_200_event_cluster_case_and_undo_takes_it_back(
    live_url: str,
    r: redis.Redis[bytes],
    store: Store,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    brigade = Reason(
        "coordination.lockstep",
        "50 accounts acted in lockstep on 4 items within 2.5 min (synchrony 0.97, young 100%)",
        0.7,
        "coordination.lockstep:5f1c2a",
    )
    cluster = [
        make_event(
            at=40.0 * (i // 50) + 0.3 * (i % 50),  # four waves of 50 in 2.5 min
            account_id=f"brigade-{i % 50:02d}",
            account_created_at=T0 - timedelta(hours=5),
            item_id=f"post-{i % 4}",
            kind="report",
            value="spam",
            ip=f"203.0.113.{i % 3}",
            payload={"text": f"Honest review of product {i % 4}: works as described."},
        )
        for i in range(200)
    ]
    put_in_review(r, cluster, [brigade], risk=0.7)
    contested = [
        make_event(at=400.0 + i, account_id=f"user-{i}", item_id="post-9", value="ham")
        for i in range(3)
    ]
    put_in_review(
        r, contested, [Reason("consistency.consensus", "against 14 others on the item", 0.6)]
    )
    loner = [make_event(at=500.0, account_id="night-owl")]
    put_in_review(r, loner, [Reason("outlier", "the account's behaviour is an outlier", 0.55)])
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        log_in_page(page, live_url, "/review/?kind=&risk_min=0.5")
        page.wait_for_selector("#case-queue")
        assert page.locator("tr.case-row").count() == 3
        page.screenshot(path=str(shots / "review-queue.png"), full_page=True)

        page.keyboard.press("c")  # the next case: the cluster (most risk x events)
        page.wait_for_selector("#case-page")
        case_id = page.get_attribute("#case-page", "data-case")
        assert page.get_attribute("#case-page", "data-events") == "200"
        assert "risk_min=0.5" in page.url
        page.screenshot(path=str(shots / "review-case.png"), full_page=True)

        page.keyboard.press("r")  # one key press rejects all 200
        page.wait_for_url(lambda url: f"/case/{case_id}?" not in url)
        page.wait_for_selector("#undo-form")
        assert _statuses(r, cluster) == {"rejected": 200}
        assert "risk_min=0.5" in page.url  # the filters survive the decision
        assert store.count() == 0

        page.keyboard.press("u")  # undo the whole case
        page.wait_for_url(f"**/review/case/{case_id}?*")
        page.wait_for_selector("#case-page")
        assert _statuses(r, cluster) == {"review": 200}
        assert page.get_attribute("#case-page", "data-events") == "200"

        page.keyboard.press("a")  # approving asks first, showing how many
        page.wait_for_selector("#confirm-panel:not([hidden])")
        assert "Approve all 200 events" in page.inner_text("#confirm-text")
        page.screenshot(path=str(shots / "review-case-confirm.png"))
        assert _statuses(r, cluster) == {"review": 200}
        page.keyboard.press("y")
        page.wait_for_selector("#undo-form")
        assert _statuses(r, cluster) == {"admitted": 200}

        # the next case (same filters): the item's contested feedback; split it by
        # keyboard: tick the first member, approve it, reject the other two
        assert page.get_attribute("#case-page", "data-events") == "3"
        assert "risk_min=0.5" in page.url
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("s")
        page.wait_for_selector("#confirm-panel:not([hidden])")
        assert "approve 1 ticked events, reject the other 2" in page.inner_text("#confirm-text")
        page.keyboard.press("y")
        page.wait_for_selector("#undo-form")
        browser.close()
    assert not errors, errors
    assert _statuses(r, contested) == {"admitted": 1, "rejected": 2}
    admitted = {e.event_id for e in cluster} | {
        rec.event.event_id
        for rec in ledger.load(r, NS, [e.event_id for e in contested])
        if rec and rec.decision.status == "admitted"
    }
    assert {item.event.event_id for item in store.iter_rows()} == admitted


# Each payload, if it ever ran, would set window.__xss or open a dialog.
XSS_BROWSER = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "<svg/onload=window.__xss=1>",
    "javascript:window.__xss=1",
    "'-alert(1)-'",
    "</title><script>window.__xss=1</script>",
    "<iframe srcdoc='<script>parent.__xss=1</script>'></iframe>",
    '<a href="javascript:window.__xss=1" id=x>x</a>',
    "<details open ontoggle=window.__xss=1>",
    "{{7*7}}${7*7}",
]


def test_xss_corpus_in_every_field_never_runs_in_the_browser(
    live_url: str,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    events = [
        hostile_event(make_event, payload, at=float(n), account_id=f"acct{n}" + payload)
        for n, payload in enumerate(XSS_BROWSER)
    ]
    send_to_review(
        pipeline,
        r,
        events,
        per_event={
            e.event_id: [Reason("code" + p, p, 0.6)]
            for e, p in zip(events, XSS_BROWSER, strict=True)
        },
    )
    accounts.replace_findings(
        r,
        NS,
        [(e.account_id, {"risk": 0.7, "reasons": [], "clusters": ["c-xss"]}) for e in events],
        [
            (
                "c-xss",
                {
                    "members": [e.account_id for e in events],
                    "items": XSS_BROWSER,
                    "code": XSS_BROWSER[0],
                    "detail": XSS_BROWSER[1],
                    "timeline": {"counts": [[0.0, 3]]},
                },
            )
        ],
    )
    dialogs: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{live_url}/review/")
        page.fill("input[name=username]", "ana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("table.queue")
        visited = [page.url]
        assert page.evaluate("window.__xss") is None
        for event in events:
            page.goto(f"{live_url}/review/item/{quote(event.event_id)}")
            page.wait_for_selector("svg.cluster-svg")
            page.mouse.move(10, 10)
            visited.append(page.url)
            assert page.evaluate("window.__xss") is None, page.url
        browser.close()
    assert dialogs == []
    assert len(visited) == len(events) + 1
