"""feedbackguard on a real Redis Cluster: capture, ingest, analysis, release, review and
admin, with namespaces on each of three masters and RQ on a plain Redis of its own.

The cluster is three `redis-server --cluster-enabled yes` processes on loopback ports
7101-7103 (`feedbackguard.localcluster`); the module is skipped only where no Redis 7
server is on PATH. A script or MULTI whose keys cross slots fails here (CROSSSLOT from
the server, or redis-py's refusal of a cross-slot transaction), as it would in
production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient
from rq import Queue

from feedbackguard import inbox_writer, keys, localcluster
from feedbackguard.capture import FeedbackGuard
from feedbackguard.cli import main as cli_main
from feedbackguard.connection import ControlPlaneError, client_from_url, connect, connect_rq
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import ledger, runtime
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store
from feedbackguard.web import auth
from feedbackguard.web.server import create_app

MakeEvent = Callable[..., FeedbackEvent]
# One namespace on each master of the local cluster (slots 5161, 9076 and 15901 of the
# default three-way split; `test_namespaces_sit_on_every_master` checks it).
NAMESPACES = ("news", "films", "books")
EVENTS_PER_NAMESPACE = 30

_reason = localcluster.available()
pytestmark = pytest.mark.skipif(_reason is not None, reason=f"no local Redis Cluster: {_reason}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localcluster.LocalCluster]:
    found = localcluster.LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def control_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain Redis for RQ's queues (the control plane)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("control"))
    yield server.start()
    server.stop()


@pytest.fixture
def cr(cluster: localcluster.LocalCluster, control_url: str) -> Iterator[redis.Redis[bytes]]:
    """The data plane's client on an empty cluster (and an empty control plane)."""
    cluster.flush()
    control = redis.Redis.from_url(control_url)
    control.flushall()
    control.close()
    client = client_from_url(cluster.url)
    yield client
    client.close()


@pytest.fixture
def csettings(
    tmp_path: Path, cluster: localcluster.LocalCluster, control_url: str, cr: redis.Redis[bytes]
) -> Settings:
    return Settings(
        home=tmp_path / "home", redis_url=cluster.url, rq_redis_url=control_url, clock="events"
    )


@pytest.fixture
def crt(csettings: Settings, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The process-wide runtime (`runtime.current()`, which RQ's jobs use) on the cluster."""
    for name, value in (
        ("REDIS_URL", csettings.redis_url),
        ("RQ_REDIS_URL", csettings.rq_redis_url),
        ("HOME", csettings.home),
        ("STORE_URL", store_url),
        ("CLOCK", "events"),
    ):
        monkeypatch.setenv(f"FEEDBACKGUARD_{name}", str(value))
    with Store.from_settings(Settings(), create=True):
        pass  # the home's store and key, as `feedbackguard store init` makes them
    runtime.current.cache_clear()
    rt = runtime.current()
    yield rt
    rt.close()
    runtime.current.cache_clear()


def _events(make_event: MakeEvent, namespace: str, n: int = EVENTS_PER_NAMESPACE) -> list[Any]:
    return [
        make_event(at=i * 20.0, namespace=namespace, account_id=f"{namespace}-a{i}")
        for i in range(n)
    ]


def _push(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> None:
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, events)
    pipe.execute()


def _burst() -> None:
    result = CliRunner().invoke(cli_main, ["worker", "--burst"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _admin_headers(r: redis.Redis[bytes], role: str = "admin") -> dict[str, str]:
    _, secret = auth.add_key(r, f"test-{role}", role)
    return {"Authorization": f"Bearer {secret}"}


# --- the layout ------------------------------------------------------------------------


def test_namespaces_sit_on_every_master(cluster: localcluster.LocalCluster) -> None:
    ports = {cluster.port_of(keys.inbox(ns)) for ns in NAMESPACES}
    assert ports == set(cluster.ports)


def test_a_cluster_data_plane_needs_a_plain_redis_for_rq(
    csettings: Settings, cluster: localcluster.LocalCluster
) -> None:
    data = connect(csettings)
    try:
        with pytest.raises(ControlPlaneError, match="FEEDBACKGUARD_RQ_REDIS_URL"):
            connect_rq(csettings.model_copy(update={"rq_redis_url": None}), data)
        with pytest.raises(ControlPlaneError, match="plain Redis"):
            connect_rq(csettings.model_copy(update={"rq_redis_url": cluster.url}), data)
    finally:
        data.close()


# --- capture -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "buffered"])
def test_capture_appends_each_namespace_to_its_own_master(
    cr: redis.Redis[bytes], csettings: Settings, cluster: localcluster.LocalCluster, mode: str
) -> None:
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=csettings.model_copy(update={"capture_mode": mode}))

    @app.post("/items/<item_id>/feedback")
    @guard.feedback(
        kind="label",
        account="header:X-User",
        item="view:item_id",
        value="json:label",
        namespace="json:ns",
    )
    def feedback(item_id: str) -> dict[str, Any]:
        return {"ok": True}

    client = app.test_client()
    for i in range(12):
        ns = NAMESPACES[i % len(NAMESPACES)]
        resp = client.post(
            f"/items/i{i}/feedback", json={"label": "x", "ns": ns}, headers={"X-User": f"u{i}"}
        )
        assert resp.status_code == 200
    guard.flush(app)
    counters = guard.capture_of(app).counters
    guard.close()
    assert (counters.captured, counters.spooled) == (12, 0)
    assert {ns: cr.xlen(keys.inbox(ns)) for ns in NAMESPACES} == dict.fromkeys(NAMESPACES, 4)
    assert {m.decode() for m in cr.smembers(keys.namespaces())} == set(NAMESPACES)


def test_capture_spools_while_no_cluster_node_answers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, redis_url="redis+cluster://127.0.0.1:7199")
    app = flask.Flask(__name__)
    guard = FeedbackGuard(app, settings=settings)

    @app.post("/feedback")
    @guard.feedback(kind="label", account="header:X-User", item="json:item", value="json:v")
    def feedback() -> dict[str, Any]:
        return {"ok": True}

    resp = app.test_client().post(
        "/feedback", json={"item": "i", "v": "x"}, headers={"X-User": "u"}
    )
    counters = guard.capture_of(app).counters
    guard.close()
    assert resp.json == {"ok": True}
    assert (counters.captured, counters.spooled) == (0, 1)


# --- ingest, analysis and release, by RQ workers -----------------------------------------


def test_workers_ingest_analyse_and_release_every_namespace(
    cr: redis.Redis[bytes],
    crt: Runtime,
    make_event: MakeEvent,
    cluster: localcluster.LocalCluster,
    control_url: str,
) -> None:
    by_ns = {ns: _events(make_event, ns) for ns in NAMESPACES}
    for events in by_ns.values():
        _push(cr, events)
    _burst()  # ingest, then analysis (the clock moved past the interval)
    for ns in NAMESPACES:
        assert ledger.stats(cr, ns).get("decided") == EVENTS_PER_NAMESPACE
        assert ledger.analysed(cr, ns) > 0
    probation = PolicyStore(cr, cache_s=0).current().policy.probation_s
    pipe = cr.pipeline(transaction=False)
    for ns, events in by_ns.items():
        ledger.advance_clock(pipe, ns, events[-1].received_at.timestamp() + probation + 1)
    pipe.execute()
    _burst()  # release
    admitted = {ns: ledger.stats(cr, ns).get("admitted", 0) for ns in NAMESPACES}
    assert all(admitted.values()), admitted
    assert crt.pipeline.store.count() == sum(admitted.values())
    # RQ's keys are on the control plane only.
    control = redis.Redis.from_url(control_url)
    assert any(k.startswith(b"rq:") for k in control.keys("*"))
    control.close()
    for port in cluster.ports:
        assert not cluster.node(port).keys("rq:*")


# --- review -----------------------------------------------------------------------------


def test_moderators_approve_reject_and_undo_on_every_master(
    cr: redis.Redis[bytes], crt: Runtime, make_event: MakeEvent
) -> None:
    client = create_app(crt).test_client()
    admin = _admin_headers(cr)
    moderator = _admin_headers(cr, "moderator")
    for ns in NAMESPACES:
        resp = client.post(
            f"/api/v1/namespaces/{ns}/lockdown", json={"on": True, "reason": "t"}, headers=admin
        )
        assert resp.status_code == 200, resp.json
        _push(cr, _events(make_event, ns, 4))
    _burst()
    for ns in NAMESPACES:
        claimed = client.post(
            "/review/api/claim", json={"namespace": ns, "count": 4}, headers=moderator
        ).json["items"]
        ids = [item["event"]["event_id"] for item in claimed]
        assert len(ids) == 4
        for action, chosen in (("approve", ids[:2]), ("reject", ids[2:])):
            resp = client.post(
                "/review/api/decide",
                json={"namespace": ns, "ids": chosen, "action": action},
                headers=moderator,
            )
            assert resp.status_code == 200, resp.json
        undone = client.post(
            "/review/api/undo", json={"namespace": ns, "ids": ids[:1]}, headers=moderator
        ).json
        assert undone["undone"] == ids[:1]
        stats = ledger.stats(cr, ns)
        assert (stats.get("admitted"), stats.get("rejected"), stats.get("review")) == (1, 2, 1)
    assert crt.pipeline.store.count() == 2 * len(NAMESPACES)  # the undone one quarantined
    actions = [e["action"] for e in _audit(client, admin)]
    assert actions.count("review.approve") == len(NAMESPACES)
    assert actions.count("review.undo") == len(NAMESPACES)


def _audit(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/audit?limit=1000", headers=headers)
    assert resp.status_code == 200, resp.json
    return list(resp.json["entries"])


# --- admin ------------------------------------------------------------------------------


def test_admin_api_on_the_cluster(
    cr: redis.Redis[bytes], crt: Runtime, make_event: MakeEvent
) -> None:
    client = create_app(crt).test_client()
    admin = _admin_headers(cr)
    for ns in NAMESPACES:
        _push(cr, _events(make_event, ns, 10))
    _burst()

    patched = client.patch(
        "/api/v1/policy", json={"patch": {"thresholds": {"review": 0.4}}}, headers=admin
    )
    assert patched.status_code == 200, patched.json
    back = client.post(
        "/api/v1/policy/rollback", json={"version": patched.json["version"] - 1}, headers=admin
    )
    assert back.status_code == 200, back.json
    assert client.get("/api/v1/policy/history", headers=admin).json["versions"]
    for ns in NAMESPACES:
        dry = client.post(
            "/api/v1/policy/dry-run",
            json={"namespace": ns, "patch": {"thresholds": {"review": 0.1}}},
            headers=admin,
        )
        assert dry.status_code == 200, dry.json
        assert dry.json["events"] == 10
        assert client.get(f"/api/v1/namespaces/{ns}", headers=admin).status_code == 200
    for action in ("block", "unblock"):
        done = client.post(f"/api/v1/accounts/news-a1/{action}", json={}, headers=admin)
        assert done.status_code == 200, done.json
    trusted = client.post("/api/v1/accounts/films-a2/trust", json={}, headers=admin)
    assert trusted.json["state"] == "trusted"
    assert client.get("/api/v1/accounts/films-a2?namespace=films", headers=admin).status_code == 200
    added = client.post(
        "/api/v1/lists/ip", json={"value": "10.9.9.9", "action": "deny"}, headers=admin
    )
    assert added.status_code == 200, added.json
    assert client.post("/api/v1/lists/ip/remove", json={"value": "10.9.9.9"}, headers=admin).json[
        "removed"
    ]
    key = client.post("/api/v1/keys", json={"name": "ci", "role": "viewer"}, headers=admin)
    assert key.status_code == 201, key.json
    assert client.post(f"/api/v1/keys/{key.json['key_id']}/revoke", headers=admin).json["removed"]
    purged = client.post(
        "/api/v1/purge/accounts", json={"account_ids": ["books-a1"]}, headers=admin
    )
    assert purged.status_code == 200, purged.json
    assert client.get("/api/v1/namespaces", headers=admin).status_code == 200
    waiting = Queue(keys.INGEST_QUEUE, connection=crt.control)
    waiting.enqueue("feedbackguard.pipeline.jobs.ingest_job", "news")
    metrics = client.get("/metrics")
    waiting.empty()
    assert metrics.status_code == 200
    assert b'feedbackguard_jobs_queued{queue="fg-ingest"} 1.0' in metrics.data
    assert client.get("/readyz").status_code == 200
    actions = {e["action"] for e in _audit(client, admin)}
    assert {"policy.set", "account.blocked", "account.cleared", "account.trusted"} <= actions
    assert {"list.deny", "list.remove", "key.add", "key.revoke", "store.purge"} <= actions
