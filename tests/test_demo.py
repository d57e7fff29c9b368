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
    """Collects the demo's lines and, when the report is out (the demo's `wait`), logs
    in to its review UI, still up then."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.queue_page = ""

    def echo(self, line: str) -> None:
        self.lines.append(line)

    def wait(self, report: dict[str, Any]) -> None:
        url, user, password = (report["review_ui"][k] for k in ("url", "user", "password"))
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
    settings = Settings(home=home, redis_url=None, store_url=None)
    return run(settings, echo=moderator.echo, wait=moderator.wait)


def _index(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_demo_review_ui_stays_up_after_the_report_until_the_wait_ends(
    report: dict[str, Any], moderator: Moderator
) -> None:
    assert report["review_ui"]["user"] == "demo-moderator"
    assert "Log out" in moderator.queue_page  # only a logged-in page has it


def test_demo_gives_the_review_ui_and_its_login_before_sending(
    report: dict[str, Any], moderator: Moderator
) -> None:
    ui = report["review_ui"]
    hint = _index(moderator.lines, f"review UI at {ui['url']} (log in as {ui['user']} / ")
    assert hint < _index(moderator.lines, "sending honest and hostile corrections")
    assert "stays up after the report" in moderator.lines[hint + 1]


def test_demo_model_is_better_retrained_on_what_feedbackguard_admitted(
    report: dict[str, Any],
) -> None:
    model = report["model"]
    assert model["accuracy_feedbackguard"] > model["accuracy_no_defence"]
    assert model["accuracy_before_attack"] > model["accuracy_no_defence"]


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
