"""The demo end to end: embedded Redis, the example desk over HTTP, a real worker."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from feedbackguard.demo import run
from feedbackguard.settings import Settings

pytestmark = pytest.mark.slow


class Moderator:
    """Logs in to the demo's review UI while the demo still runs (at its last lines)."""

    def __init__(self) -> None:
        self.queue_page = ""

    def __call__(self, line: str) -> None:
        found = re.search(r"waiting for a moderator: \d+ at (\S+) \((\S+) / (\S+)\)", line)
        if found is None:
            return
        url, user, password = found.groups()
        base = url.split("/review/")[0]
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        form = browser.open(f"{base}/review/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        data = {"username": user, "password": password, "csrf_token": token.group(1)}
        browser.open(f"{base}/review/login", urllib.parse.urlencode(data).encode())
        self.queue_page = browser.open(url).read().decode()


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, moderator: Moderator) -> dict[str, Any]:
    home: Path = tmp_path_factory.mktemp("demo-home")
    return run(Settings(home=home, redis_url=None, store_url=None), echo=moderator)


def test_demo_moderator_login_opens_the_review_queue(
    report: dict[str, Any], moderator: Moderator
) -> None:
    assert report["review_ui"]["user"] == "demo-moderator"
    assert "Log out" in moderator.queue_page  # only a logged-in page has it


def test_every_demo_event_reaches_a_final_status(report: dict[str, Any]) -> None:
    finals = {"admitted", "review", "rejected", "quarantined"}
    statuses = {s for counts in report["outcomes"].values() for s in counts}
    assert statuses <= finals
    assert sum(sum(c.values()) for c in report["outcomes"].values()) == report["events"]


def test_demo_admits_honest_corrections(report: dict[str, Any]) -> None:
    honest = report["outcomes"]["honest"]
    assert honest.get("admitted", 0) >= 0.98 * sum(honest.values())


def test_demo_flood_is_stopped_by_the_new_account_limit(report: dict[str, Any]) -> None:
    flood = report["outcomes"]["flood"]
    assert flood.get("admitted", 0) <= 30  # the new-account burst of the default limit
    assert report["reasons"]["flood"].get("rate_limited.account", 0) >= 100


def test_demo_stops_the_sybil_swarm(report: dict[str, Any]) -> None:
    assert report["outcomes"]["swarm"].get("admitted", 0) == 0


def test_demo_sends_few_honest_corrections_to_review(report: dict[str, Any]) -> None:
    honest = report["outcomes"]["honest"]
    assert honest.get("review", 0) + honest.get("rejected", 0) <= 0.02 * sum(honest.values())


def test_demo_store_holds_exactly_the_admitted_events(report: dict[str, Any]) -> None:
    admitted = sum(c.get("admitted", 0) for c in report["outcomes"].values())
    assert report["store_rows"] == admitted
