"""Hostile input against the review API (hypothesis): whatever the JSON body or query
string, a moderator's request never gets a 5xx, and the queue survives it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedbackguard.web import auth

pytestmark = pytest.mark.slow

POSTS = ("claim", "release", "decide", "bulk", "undo", "cases/claim", "cases/undo",
         "cases/1/decide", "cases/x/decide")  # fmt: skip
FIELDS = ("namespace", "ids", "action", "note", "count", "account", "cluster", "reason",
          "risk_min", "risk_max", "event_id", "cursor", "limit", "kind", "version",
          "approve_ids", "approve_accounts", "action_id")  # fmt: skip
text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "default", "approve", "reject", "\x00", "../../etc", "<script>", "9" * 400, "NaN"]
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
# Near-valid bodies too, so that the handlers behind validation are reached.
near_valid = st.fixed_dictionaries(
    {"namespace": text, "ids": st.lists(text, max_size=5), "action": text},
    optional={"note": text, "count": st.integers(), "account": text, "cluster": text},
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | text, values, max_size=6) | values | near_valid
queries = st.dictionaries(st.sampled_from(FIELDS) | text, text, max_size=5)
SLOW_OK = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def moderator(r: redis.Redis[bytes]) -> dict[str, str]:
    return {"X-API-Key": auth.add_key(r, "fuzz", "moderator")[1]}


@SLOW_OK
@given(endpoint=st.sampled_from(POSTS), body=bodies)
def test_any_json_body_gets_no_server_error(
    client: FlaskClient, moderator: dict[str, str], endpoint: str, body: Any
) -> None:
    resp = client.post(f"/review/api/{endpoint}", json=body, headers=moderator)
    assert resp.status_code < 500
    assert resp.is_json


@SLOW_OK
@given(raw=st.binary(max_size=200))
def test_any_raw_body_gets_no_server_error(
    client: FlaskClient, moderator: dict[str, str], raw: bytes
) -> None:
    headers = {**moderator, "Content-Type": "application/json"}
    assert client.post("/review/api/decide", data=raw, headers=headers).status_code < 500


@SLOW_OK
@given(query=queries, event_id=text.filter(lambda s: s.strip(".") != ""))
def test_any_query_gets_no_server_error(
    client: FlaskClient, moderator: dict[str, str], query: dict[str, str], event_id: str
) -> None:
    for listing in ("items", "cases", "cases/over-budget", "status", "cases/1"):
        found = client.get(f"/review/api/{listing}", query_string=query, headers=moderator)
        assert found.status_code < 500
    path = f"/review/api/items/{quote(event_id, safe='')}"
    resp = client.get(path, query_string=query, headers=moderator)
    assert resp.status_code < 500
