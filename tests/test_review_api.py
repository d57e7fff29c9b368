"""The review JSON API through the Flask test review_client (real Redis, real store)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import redis
from flask.testing import FlaskClient

from feedbackguard import accounts
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.reasons import Reason
from feedbackguard.store import Store
from tests.review_helpers import NS, key_headers, log_in, put_in_review, send_to_review

MakeEvent = Callable[..., FeedbackEvent]


def test_listing_needs_credentials(review_client: FlaskClient) -> None:
    assert review_client.get("/review/api/items").status_code == 401


def test_viewer_lists_with_cursor_paging(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    events = [make_event(at=i) for i in range(5)]
    send_to_review(pipeline, r, events)
    headers = key_headers(r, "dash", "viewer")
    first = review_client.get("/review/api/items?limit=3", headers=headers).get_json()
    second = review_client.get(
        f"/review/api/items?limit=3&cursor={first['next_cursor']}", headers=headers
    ).get_json()
    ids = [i["event"]["event_id"] for i in first["items"] + second["items"]]
    assert ids == [e.event_id for e in events]
    assert second["next_cursor"] is None


def test_viewer_may_not_decide(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    resp = review_client.post(
        "/review/api/decide",
        json={"ids": [event.event_id], "action": "approve"},
        headers=key_headers(r, "dash", "viewer"),
    )
    assert resp.status_code == 403


def test_moderator_key_approves_into_the_store(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    store: Store,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    resp = review_client.post(
        "/review/api/decide",
        json={"ids": [event.event_id], "action": "approve", "note": "fine"},
        headers=key_headers(r, "bot", "moderator"),
    )
    assert resp.get_json()["approved"] == [event.event_id]
    stored = store.get(event.namespace, event.event_id)
    assert stored is not None
    assert stored.decisions[-1].decided_by == "moderator:bot"


def test_claims_through_the_api_are_exclusive(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    send_to_review(pipeline, r, [make_event() for _ in range(3)])
    one = review_client.post(
        "/review/api/claim", json={"count": 2}, headers=key_headers(r, "m1", "moderator")
    ).get_json()
    two = review_client.post(
        "/review/api/claim", json={"count": 2}, headers=key_headers(r, "m2", "moderator")
    ).get_json()
    first = {i["event"]["event_id"] for i in one["items"]}
    second = {i["event"]["event_id"] for i in two["items"]}
    assert len(first) == 2
    assert len(second) == 1
    assert not first & second


def test_bulk_reject_of_a_cluster(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    store: Store,
    make_event: MakeEvent,
) -> None:
    swarm = [make_event(account_id=f"s{i % 3}") for i in range(6)]
    honest = make_event(account_id="honest")
    send_to_review(pipeline, r, [*swarm, honest])
    accounts.replace_findings(r, NS, [], [("c9", {"members": ["s0", "s1", "s2"], "code": "x"})])
    resp = review_client.post(
        "/review/api/bulk",
        json={"cluster": "c9", "action": "reject", "note": "swarm"},
        headers=key_headers(r, "bot", "moderator"),
    )
    assert sorted(resp.get_json()["rejected"]) == sorted(e.event_id for e in swarm)
    record = ledger.load(r, NS, [honest.event_id])[0]
    assert record is not None
    assert record.decision.status == "review"
    assert store.count() == 0


def test_undo_through_the_api(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    headers = key_headers(r, "bot", "moderator")
    review_client.post(
        "/review/api/decide", json={"ids": [event.event_id], "action": "reject"}, headers=headers
    )
    resp = review_client.post("/review/api/undo", json={"ids": [event.event_id]}, headers=headers)
    assert resp.get_json()["undone"] == [event.event_id]


def test_session_callers_must_send_the_csrf_token(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    event = make_event()
    send_to_review(pipeline, r, [event])
    token = log_in(review_client)
    body = {"ids": [event.event_id], "action": "reject"}
    assert review_client.post("/review/api/decide", json=body).status_code == 403
    ok = review_client.post("/review/api/decide", json=body, headers={"X-CSRF-Token": token})
    assert ok.get_json()["rejected"] == [event.event_id]


def test_a_case_action_without_the_csrf_token_gets_the_csrf_error(
    review_client: FlaskClient, r: redis.Redis[bytes]
) -> None:
    log_in(review_client)
    resp = review_client.post("/review/api/cases/claim", json={})
    assert resp.status_code == 403
    assert resp.get_json() == {"error": "csrf", "message": "missing or wrong CSRF token"}
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


def test_invalid_bodies_get_a_400(review_client: FlaskClient, r: redis.Redis[bytes]) -> None:
    resp = review_client.post(
        "/review/api/decide",
        json={"ids": [], "action": "maybe"},
        headers=key_headers(r, "bot", "moderator"),
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid"


def test_api_answers_carry_a_strict_csp(review_client: FlaskClient) -> None:
    csp = review_client.get("/review/api/items").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


ODD_IDS = ["a/b", "a%2Fb", "with space", "ünï/cödé-😀", "/lead//and/trail/", "q?x=1#f"]


def test_any_valid_event_id_opens_through_the_api(
    review_client: FlaskClient,
    r: redis.Redis[bytes],
    pipeline: Pipeline,
    make_event: MakeEvent,
) -> None:
    events = [make_event(event_id=i) for i in ODD_IDS]
    send_to_review(pipeline, r, events)
    headers = key_headers(r, "dash", "viewer")
    for event in events:
        resp = review_client.get(
            f"/review/api/items/{quote(event.event_id, safe='/')}", headers=headers
        )
        assert resp.status_code == 200, (event.event_id, resp.data)
        assert resp.get_json()["event"]["event_id"] == event.event_id


def test_cases_api_lists_claims_decides_and_undoes_a_case(
    review_client: FlaskClient, r: redis.Redis[bytes], store: Store, make_event: MakeEvent
) -> None:
    group = Reason("coordination.lockstep", "in lockstep", 0.6, "g:7")
    swarm = [make_event(account_id=f"b{i % 4}") for i in range(8)]
    put_in_review(r, swarm, [group])
    put_in_review(r, [make_event(account_id="solo")])
    viewer = key_headers(r, "dash", "viewer")
    listed = review_client.get("/review/api/cases", headers=viewer).get_json()
    assert listed["order"] == "risk"
    assert [(c["kind"], c["events"]) for c in listed["cases"]] == [("group", 8), ("account", 1)]
    assert listed["status"]["open_cases"] == 2
    mod = key_headers(r, "ana", "moderator")
    claimed = review_client.post("/review/api/cases/claim", json={}, headers=mod).get_json()
    case = claimed["case"]
    assert case["claimed_by"] == "ana"
    other = key_headers(r, "bo", "moderator")
    busy = review_client.post(
        f"/review/api/cases/{case['case_id']}/decide", json={"action": "reject"}, headers=other
    )
    assert busy.status_code == 409
    done = review_client.post(
        f"/review/api/cases/{case['case_id']}/decide",
        json={"action": "approve", "version": case["version"], "note": "real fans"},
        headers=mod,
    ).get_json()
    assert len(done["approved"]) == 8
    assert store.count() == 8
    undone = review_client.post(
        "/review/api/cases/undo", json={"action_id": done["action_id"]}, headers=mod
    ).get_json()
    assert len(undone["undone"]) == 8
    one = review_client.get(f"/review/api/cases/{case['case_id']}", headers=viewer).get_json()
    assert (one["open"], len(one["event_ids"])) == (True, 8)


def test_cases_api_refuses_an_approval_on_a_stale_version(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="eve")])
    mod = key_headers(r, "ana", "moderator")
    case = review_client.get("/review/api/cases", headers=mod).get_json()["cases"][0]
    put_in_review(r, [make_event(account_id="eve")])
    resp = review_client.post(
        f"/review/api/cases/{case['case_id']}/decide",
        json={"action": "approve", "version": case["version"]},
        headers=mod,
    )
    assert resp.status_code == 409
    assert "changed since it was shown" in resp.get_json()["message"]


def test_review_status_api_shows_the_backlog(
    review_client: FlaskClient, r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(), make_event()])
    found = review_client.get(
        "/review/api/status", headers=key_headers(r, "dash", "viewer")
    ).get_json()
    assert (found["open_cases"], found["waiting_events"]) == (2, 2)
    assert found["capacity_per_day"] == 0
