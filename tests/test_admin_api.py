"""Admin API (/v1): policy, accounts, lists, purge, namespaces, audit, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedbackguard import audit, inbox_writer
from feedbackguard.checks.base import CheckContext
from feedbackguard.checks.lists import ListCheck
from feedbackguard.decisions import Decision
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy import MAX_POLICY_BYTES, Policy, lists
from feedbackguard.web import auth
from tests.conftest import FakeClock


def _key(r: redis.Redis[bytes], role: str) -> dict[str, str]:
    _, secret = auth.add_key(r, f"test-{role}", role)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin(r: redis.Redis[bytes]) -> dict[str, str]:
    return _key(r, "admin")


@pytest.fixture
def viewer(r: redis.Redis[bytes]) -> dict[str, str]:
    return _key(r, "viewer")


def test_get_policy_returns_current_version(client: FlaskClient, viewer: dict[str, str]) -> None:
    resp = client.get("/api/v1/policy", headers=viewer)
    assert resp.status_code == 200
    assert resp.json["version"] >= 1
    assert "thresholds" in resp.json["policy"]


def test_patch_policy_deep_merges_and_records_author(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    resp = client.patch(
        "/api/v1/policy",
        json={"patch": {"thresholds": {"review": 0.4}}, "note": "tighter"},
        headers=admin,
    )
    assert resp.status_code == 200
    body = resp.json
    assert body["policy"]["thresholds"] == {"review": 0.4, "reject": 0.9}
    assert body["author"] == "key:test-admin"
    assert body["note"] == "tighter"


def test_invalid_policy_answers_422_with_field_paths(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    resp = client.patch(
        "/api/v1/policy", json={"patch": {"thresholds": {"review": 2}}}, headers=admin
    )
    assert resp.status_code == 422
    assert [d["loc"] for d in resp.json["detail"]] == ["policy.thresholds.review"]


def test_unknown_policy_field_answers_422(client: FlaskClient, admin: dict[str, str]) -> None:
    resp = client.put("/api/v1/policy", json={"policy": {"nope": 1}}, headers=admin)
    assert resp.status_code == 422
    assert resp.json["detail"][0]["loc"] == "policy.nope"


def test_history_shows_diff_and_rollback_restores(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    first = client.get("/api/v1/policy", headers=admin).json["version"]
    client.patch("/api/v1/policy", json={"patch": {"probation_s": 60}}, headers=admin)
    history = client.get("/api/v1/policy/history", headers=admin).json["versions"]
    assert history[0]["diff"]["probation_s"][1] == 60
    back = client.post("/api/v1/policy/rollback", json={"version": first}, headers=admin)
    assert back.status_code == 200
    assert back.json["policy"]["probation_s"] != 60


def test_rollback_to_unknown_version_is_404(client: FlaskClient, admin: dict[str, str]) -> None:
    resp = client.post("/api/v1/policy/rollback", json={"version": 999}, headers=admin)
    assert resp.status_code == 404


def test_policy_change_reaches_running_worker_within_5s(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, clock: FakeClock
) -> None:
    worker = rt.pipeline.policies  # the worker's cached PolicyStore (policy_cache_s)
    worker.clock = clock
    before = worker.current().version
    started = clock()
    client.patch("/api/v1/policy", json={"patch": {"probation_s": 123}}, headers=admin)
    while worker.current().version == before:
        assert clock() - started < 5.0
        clock.advance(0.05)
    elapsed = clock() - started
    assert worker.current().policy.probation_s == 123
    assert elapsed <= 5.0


def _ingest(rt: Runtime, events: list[FeedbackEvent]) -> None:
    pipe = rt.redis.pipeline()
    inbox_writer.append(pipe, events)
    pipe.execute()
    while rt.pipeline.ingest_batch("default", "test").entries:
        pass


def test_dry_run_counts_status_changes_under_proposed_thresholds(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    _ingest(rt, [make_event(account_id=f"a{i}", received_at=now) for i in range(5)])
    resp = client.post(
        "/api/v1/policy/dry-run",
        json={"patch": {"thresholds": {"review": 0.0, "reject": 0.0}}, "hours": 1},
        headers=admin,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["events"] == 5
    [move] = resp.json["moves"]
    assert (move["old"], move["new"], move["count"]) == ("pending", "rejected", 5)


def test_list_deny_makes_check_report_list_denied(
    client: FlaskClient, admin: dict[str, str], r: redis.Redis[bytes], make_event: Any
) -> None:
    resp = client.post(
        "/api/v1/lists/subnet", json={"value": "10.1.2.0/24", "action": "deny"}, headers=admin
    )
    assert resp.status_code == 200
    events = [make_event(ip="10.1.2.7"), make_event(ip="10.9.9.9")]
    found = ListCheck()(events, CheckContext(redis=r, policy=Policy(), namespace="default"))
    assert list(found) == [0]
    assert found[0][0].code == "list.denied"


def test_exact_ip_allow_overrides_subnet_deny(r: redis.Redis[bytes]) -> None:
    lists.put(r, "subnet", "10.1.2.0/24", "deny", actor="t")
    lists.put(r, "ip", "10.1.2.7", "allow", actor="t")
    assert lists.listed(r, "ip", "10.1.2.7") == "allow"
    assert lists.listed(r, "ip", "10.1.2.8") == "deny"


def test_invalid_list_value_is_422(client: FlaskClient, admin: dict[str, str]) -> None:
    resp = client.post(
        "/api/v1/lists/ip", json={"value": "not-an-ip", "action": "deny"}, headers=admin
    )
    assert resp.status_code == 422


def _admit(rt: Runtime, event: FeedbackEvent) -> None:
    decision = Decision(event_id=event.event_id, status="admitted", risk=0.0, policy_version=1)
    rt.pipeline.store.admit([(event, decision)])


def test_purge_account_creates_version_and_audit_entry(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    _admit(rt, make_event(account_id="bad"))
    _admit(rt, make_event(account_id="good"))
    resp = client.post("/api/v1/purge/accounts", json={"account_ids": ["bad"]}, headers=admin)
    assert resp.status_code == 200
    assert resp.json["changed"] == 1
    assert resp.json["live"] == 1
    entry = audit.entries(rt.redis, 1)[0]
    assert entry["action"] == "store.purge"
    assert entry["version"] == resp.json["version"]


def test_purge_range_quarantines_items_in_range_only(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    _admit(rt, make_event(received_at=t0))
    _admit(rt, make_event(received_at=t0 + timedelta(days=2)))
    resp = client.post(
        "/api/v1/purge/range",
        json={"start": t0.isoformat(), "end": (t0 + timedelta(days=1)).isoformat()},
        headers=admin,
    )
    assert resp.status_code == 200
    assert (resp.json["changed"], resp.json["live"]) == (1, 1)


def test_restore_brings_purged_items_back(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    _admit(rt, make_event(account_id="bad"))
    client.post("/api/v1/purge/accounts", json={"account_ids": ["bad"]}, headers=admin)
    resp = client.post("/api/v1/purge/restore", json={"account_ids": ["bad"]}, headers=admin)
    assert (resp.json["changed"], resp.json["live"]) == (1, 1)


def test_trust_then_show_account(
    client: FlaskClient, admin: dict[str, str], viewer: dict[str, str]
) -> None:
    resp = client.post("/api/v1/accounts/acc-1/trust", json={"note": "known"}, headers=admin)
    assert resp.json == {"account_id": "acc-1", "state": "trusted"}
    shown = client.get("/api/v1/accounts/acc-1", headers=viewer)
    assert shown.status_code == 200
    assert shown.json["state"] == "trusted"
    assert 0 < shown.json["reputation"] < 1


def test_lockdown_on_shows_in_namespace(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    _ingest(rt, [make_event()])
    resp = client.post(
        "/api/v1/namespaces/default/lockdown", json={"on": True, "reason": "attack"}, headers=admin
    )
    assert resp.status_code == 200
    assert resp.json["lockdown"]["reason"] == "attack"
    listed = client.get("/api/v1/namespaces", headers=admin).json["namespaces"]
    assert listed[0]["stats"]["decided"] == 1


def test_audit_filters_by_actor_and_action(
    client: FlaskClient, admin: dict[str, str], r: redis.Redis[bytes]
) -> None:
    audit.record(r, "someone", "other.thing")
    client.post("/api/v1/accounts/x/block", json={}, headers=admin)
    resp = client.get(
        "/api/v1/audit",
        query_string={"actor": "key:test-admin", "action": "account.*"},
        headers=admin,
    )
    assert [e["action"] for e in resp.json["entries"]] == ["account.blocked"]


def test_audit_since_in_future_is_empty(client: FlaskClient, admin: dict[str, str]) -> None:
    since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    resp = client.get("/api/v1/audit", query_string={"since": since}, headers=admin)
    assert resp.json["entries"] == []


@pytest.mark.parametrize(
    "since", ["20000101", "2000-01-01", "2000-W01-2", "2000-01-01T00:00:00", "2000-01-01 00:00Z"]
)
def test_audit_refuses_times_that_are_not_rfc3339(
    client: FlaskClient, admin: dict[str, str], since: str
) -> None:
    resp = client.get("/api/v1/audit", query_string={"since": since}, headers=admin)
    assert resp.status_code == 422


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-9, minutes=-30))])),
    lower=st.booleans(),
)
def test_audit_takes_any_rfc3339_time(
    client: FlaskClient, admin: dict[str, str], at: datetime, lower: bool
) -> None:
    since = at.isoformat().replace("+00:00", "Z")
    resp = client.get(
        "/api/v1/audit", query_string={"since": since.lower() if lower else since}, headers=admin
    )
    assert resp.status_code == 200


def test_openapi_document_is_3_1_and_lists_paths(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert "/api/v1/policy" in doc["paths"]
    assert set(doc["paths"]["/api/v1/policy"]) == {"get", "put", "patch"}


def test_unknown_admin_path_is_json_404(client: FlaskClient, admin: dict[str, str]) -> None:
    resp = client.get("/api/v1/nope", headers=admin)
    assert resp.status_code == 404
    assert resp.json["error"] == "not_found"


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"probation_s": "10"}, "policy.probation_s"),
        ({"graph": {"enabled": "off"}}, "policy.graph.enabled"),
        ({"consistency": {"knn": {"k": 5.0}}}, "policy.consistency.knn.k"),
    ],
)
def test_policy_values_of_the_wrong_json_type_are_refused_naming_the_field(
    client: FlaskClient, admin: dict[str, str], patch: dict[str, Any], loc: str
) -> None:
    resp = client.patch("/api/v1/policy", json={"patch": patch, "note": "x"}, headers=admin)
    assert resp.status_code == 422
    assert [d["loc"] for d in resp.json["detail"]] == [loc]


def test_whole_policy_put_is_validated_strictly(client: FlaskClient, admin: dict[str, str]) -> None:
    policy = client.get("/api/v1/policy", headers=admin).json["policy"]
    assert client.put("/api/v1/policy", json={"policy": policy}, headers=admin).status_code == 200
    policy["clock_skew_s"] = "60"
    resp = client.put("/api/v1/policy", json={"policy": policy}, headers=admin)
    assert resp.status_code == 422
    assert [d["loc"] for d in resp.json["detail"]] == ["policy.clock_skew_s"]


def test_a_policy_past_the_size_cap_answers_413_naming_the_limit(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    rules = [{"name": f"r{i}", "indices": list(range(400)), "low": 1.0} for i in range(200)]
    patch = {"consistency": {"triggers": {"features": rules}}}
    resp = client.patch("/api/v1/policy", json={"patch": patch, "note": "x"}, headers=admin)
    assert resp.status_code == 413
    assert resp.json["error"] == "policy_too_large"
    assert str(MAX_POLICY_BYTES) in resp.json["message"]


def test_disabling_a_defence_without_a_note_answers_422(
    client: FlaskClient, admin: dict[str, str], r: redis.Redis[bytes]
) -> None:
    before = client.get("/api/v1/policy", headers=admin).json["version"]
    for patch in (
        {"consistency": {"knn": {"enabled": False}}},
        {"ratelimit": {"limits": [{"scope": "ip", "remove": True}]}},
        {"thresholds": {"reject": 1.0}},
    ):
        resp = client.patch("/api/v1/policy", json={"patch": patch}, headers=admin)
        assert resp.status_code == 422, patch
        assert resp.json["error"] == "note_required"
        assert [d["loc"] for d in resp.json["detail"]] == ["note"]
    assert client.get("/api/v1/policy", headers=admin).json["version"] == before


def test_disabling_with_a_note_lists_the_defences_in_answer_and_audit(
    client: FlaskClient, admin: dict[str, str], r: redis.Redis[bytes]
) -> None:
    patch = {"graph": {"enabled": False}, "consistency": {"drift": {"enabled": False}}}
    resp = client.patch(
        "/api/v1/policy", json={"patch": patch, "note": "load test window"}, headers=admin
    )
    assert resp.status_code == 200
    assert resp.json["disables"] == ["consistency.drift.enabled", "graph.enabled"]
    entry = audit.entries(r, count=1)[0]
    assert entry["action"] == "policy.set"
    assert entry["disables"] == ["consistency.drift.enabled", "graph.enabled"]


def test_a_change_that_disables_nothing_needs_no_note(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    resp = client.patch(
        "/api/v1/policy", json={"patch": {"thresholds": {"review": 0.45}}}, headers=admin
    )
    assert resp.status_code == 200
    assert resp.json["disables"] == []


def test_a_policy_patch_with_an_integer_past_64_bits_is_refused_not_a_500(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    answer = client.patch(
        "/api/v1/policy",
        json={"patch": {"consistency": {"triggers": {"scan_bytes": 2**70}}}, "note": "huge"},
        headers=admin,
    )
    assert answer.status_code == 422


# -- partial changes never reset what they leave out -------------------------------------


def test_a_patch_of_one_rate_limit_keeps_the_others(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    before = client.get("/api/v1/policy", headers=admin).json["policy"]["ratelimit"]["limits"]
    ip = {"scope": "ip", "limit": 100, "window_s": 3600}
    resp = client.patch(
        "/api/v1/policy", json={"patch": {"ratelimit": {"limits": [ip]}}}, headers=admin
    )
    assert resp.status_code == 200, resp.json
    after = resp.json["policy"]["ratelimit"]["limits"]
    assert len(after) == len(before)
    assert [x for x in after if x["scope"] == "ip"] == [
        {**ip, "new_account_limit": None, "kinds": None}
    ]
    assert [x for x in after if x["scope"] != "ip"] == [x for x in before if x["scope"] != "ip"]


def test_a_put_that_leaves_out_changed_settings_is_refused_naming_them(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    client.patch("/api/v1/policy", json={"patch": {"probation_s": 60}}, headers=admin)
    before = client.get("/api/v1/policy", headers=admin).json["version"]
    resp = client.put(
        "/api/v1/policy", json={"policy": {"thresholds": {"review": 0.4}}}, headers=admin
    )
    assert resp.status_code == 422
    assert resp.json["error"] == "silent_reset"
    # Left out, the rate limits take the model's default: none.
    assert [d["loc"] for d in resp.json["detail"]] == [
        "policy.probation_s",
        "policy.ratelimit.limits",
    ]
    assert client.get("/api/v1/policy", headers=admin).json["version"] == before


def test_removing_a_rate_limit_is_called_out_in_the_answer(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    patch = {"ratelimit": {"limits": [{"scope": "ip", "remove": True}]}}
    resp = client.patch("/api/v1/policy", json={"patch": patch, "note": "NAT"}, headers=admin)
    assert resp.status_code == 200, resp.json
    assert resp.json["disables"] == ["ratelimit.limits[ip:all:3600]"]


def test_a_probation_change_says_it_is_not_retroactive(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    _ingest(rt, [make_event(received_at=datetime.now(UTC)) for _ in range(3)])
    resp = client.patch("/api/v1/policy", json={"patch": {"probation_s": 60}}, headers=admin)
    [note] = resp.json["notes"]
    assert "not retroactive" in note
    assert "the 3 item(s) pending now keep" in note


# -- the dry run replays through the real pipeline ----------------------------------------


def _dry_run(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/policy/dry-run", json={"hours": 1, **body}, headers=headers)
    assert resp.status_code == 200, resp.json
    found: dict[str, Any] = resp.json
    return found


def test_dry_run_sees_a_rate_limit_change(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    _ingest(rt, [make_event(account_id="busy", received_at=now) for _ in range(10)])
    limit = {"scope": "account", "limit": 3, "new_account_limit": 3, "window_s": 3600}
    found = _dry_run(client, admin, patch={"ratelimit": {"limits": [limit]}})
    [move] = found["moves"]
    assert (move["old"], move["new"], move["count"]) == ("pending", "rejected", 7)
    assert move["reasons"] == {"+rate_limited.account": 7}
    assert len(move["examples"]) == 5


def test_dry_run_sees_a_new_known_trigger(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    texts = ["refund please cf-7734", "where is my parcel", "cf-7734 again"]
    _ingest(rt, [make_event(payload={"text": t}, received_at=now) for t in texts])
    found = _dry_run(client, admin, patch={"consistency": {"triggers": {"text": ["cf-[0-9]{4}"]}}})
    [move] = found["moves"]
    assert (move["old"], move["new"], move["count"]) == ("pending", "rejected", 2)
    assert move["reasons"] == {"+trigger.known": 2}


def test_dry_run_counts_moves_by_account_age(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    ages = [timedelta(days=1), timedelta(days=400), None]
    _ingest(
        rt,
        [
            make_event(account_created_at=None if age is None else now - age, received_at=now)
            for age in ages
        ],
    )
    found = _dry_run(client, admin, patch={"thresholds": {"review": 0.0, "reject": 0.0}})
    [move] = found["moves"]
    assert move["populations"] == {
        "young account": 1,
        "established account": 1,
        "age unknown": 1,
    }


def test_dry_run_replays_the_policy_in_force_to_the_live_statuses(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    _ingest(rt, [make_event(account_id="busy", received_at=now) for _ in range(4)])
    found = _dry_run(client, admin, patch={"probation_s": 60})
    assert found["live"] == {"compared": 4, "agreed": 4, "moderated": 0}


def test_dry_run_calls_out_a_removed_defence(client: FlaskClient, admin: dict[str, str]) -> None:
    found = _dry_run(client, admin, patch={"consistency": {"knn": {"enabled": False}}})
    assert found["disables"] == ["consistency.knn.enabled"]


def _snapshot(r: redis.Redis[bytes]) -> dict[bytes, bytes | None]:
    return {key: r.dump(key) for key in r.scan_iter(count=1000)}


def test_dry_run_writes_nothing_live(
    client: FlaskClient, admin: dict[str, str], rt: Runtime, make_event: Any
) -> None:
    now = datetime.now(UTC)
    _ingest(rt, [make_event(account_id="busy", received_at=now) for _ in range(10)])
    client.get("/api/v1/policy", headers=admin)  # the policy is bootstrapped before
    before = _snapshot(rt.redis)
    stored = rt.pipeline.store.count()
    limit = {"scope": "account", "limit": 3, "new_account_limit": 3}
    patch = {"probation_s": 0, "ratelimit": {"limits": [limit]}}
    found = _dry_run(client, admin, patch=patch)  # 3 released (to a store), 7 rejected
    assert {(m["old"], m["new"]): m["count"] for m in found["moves"]} == {
        ("pending", "rejected"): 7,
        ("pending", "admitted"): 3,
    }
    assert _snapshot(rt.redis) == before
    assert rt.pipeline.store.count() == stored
