"""A moderator in a real headless Chromium: log in, claim with `c`, approve with `a`,
bulk-reject a cluster, and the store holds exactly the approved item. Saves
screenshots of the queue and of an item page to docs/img/."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
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
from tests.review_helpers import NS, PASSWORD, hostile_event, send_to_review

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
                    "timeline": {"counts": [[0.0, 1], [60.0, 2], [120.0, 1]]},
                },
            )
        ],
    )
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
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
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{live_url}/review/")
        page.fill("input[name=username]", "ana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("table.queue")
        assert page.locator("tr.row").count() == 7
        page.screenshot(path=str(shots / "review-queue.png"), full_page=True)

        page.keyboard.press("c")  # claim the oldest: the first swarm item
        page.wait_for_url(f"**/review/item/{swarm[0].event_id}*")
        page.wait_for_selector("svg.cluster-svg")
        assert "Claimed by ana" in page.content()
        page.screenshot(path=str(shots / "review-item.png"), full_page=True)

        page.keyboard.press("a")  # approve it
        page.wait_for_selector("table.queue")
        assert page.locator("tr.row").count() == 6

        page.goto(f"{live_url}/review/item/{swarm[1].event_id}")
        page.click("button.bulk-reject")
        page.wait_for_selector("table.queue")
        assert page.locator("tr.row").count() == 3
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
