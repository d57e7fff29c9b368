"""Shared fixtures: a real Redis and a real SQL database for every test, pipelines on
them, the process-wide runtime the CLI uses, and a clock tests move by hand.

Set FEEDBACKGUARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15; the database is
flushed before each test) and FEEDBACKGUARD_TEST_DATABASE_URL (a PostgreSQL URL; each
test gets its own schema) to use servers; without them an embedded Redis is started
and the store is SQLite, so the suite passes on a bare machine.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from feedbackguard.checks.ratelimit import RateLimitCheck
from feedbackguard.connection import client_from_url
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import runtime
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import Store

_PG_URL = os.environ.get("FEEDBACKGUARD_TEST_DATABASE_URL")
STORE_BACKENDS = ["sqlite", *(["postgresql"] if _PG_URL else [])]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("FEEDBACKGUARD_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-home"))
    yield server.start()
    server.stop()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A bytes-mode client on an empty database (every master's, on a cluster)."""
    client = client_from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on an empty database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    assert _PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(_PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty retraining store (SQLite, and PostgreSQL when configured)."""
    s = Store(store_url, b"k" * 32, export_key=Ed25519PrivateKey.generate())
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(home=tmp_path / "home", redis_url=redis_url)


T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_event() -> Callable[..., FeedbackEvent]:
    """A factory of valid events: one honest label per account, at T0 + `at` seconds."""
    counter = iter(range(1_000_000))

    def make(at: float = 0.0, **fields: object) -> FeedbackEvent:
        n = next(counter)
        values: dict[str, object] = {
            "kind": "label",
            "account_id": f"acct-{n}",
            "item_id": f"item-{n % 7}",
            "value": "spam",
            "ip": f"10.{n % 200}.{n % 17}.{n % 250}",
            "received_at": T0 + timedelta(seconds=at),
        }
        values.update(fields)
        return FeedbackEvent.model_validate(values)

    return make


@pytest.fixture
def make_pipeline(r: redis.Redis[bytes], store: Store) -> Callable[..., Pipeline]:
    """A factory of pipelines on the test Redis and store: rate limits as the only check,
    policy read uncached; keyword arguments replace any of the pipeline's fields."""

    def make(**overrides: Any) -> Pipeline:
        fields: dict[str, Any] = {
            "r": r,
            "store": store,
            "policies": PolicyStore(r, cache_s=0),
            "checks": [RateLimitCheck()],
        }
        return Pipeline(**{**fields, **overrides})

    return make


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """The plain pipeline of `make_pipeline`."""
    return make_pipeline()


@pytest.fixture
def fresh_runtime(
    settings: Settings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The process-wide runtime CLI commands use (`runtime.current()`), built anew on
    the test's Redis, home and store, and closed after the test."""
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    monkeypatch.setenv("FEEDBACKGUARD_STORE_URL", store_url)
    with Store.from_settings(Settings(), create=True):
        pass  # the home's signing key, as `feedbackguard store init` makes it
    runtime.current.cache_clear()
    rt = runtime.current()
    yield rt
    rt.close()
    runtime.current.cache_clear()


@pytest.fixture(autouse=True)
def _no_runtime_left_behind() -> Iterator[None]:
    """A runtime a CLI command cached during one test is closed, not reused by the next."""
    yield
    if runtime.current.cache_info().currsize:
        runtime.current().close()
        runtime.current.cache_clear()


class FakeClock:
    """A monotonic clock that moves only when told to.

    It starts at the real monotonic time, so a reading taken before it was swapped in
    stays comparable with its own.
    """

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# The review tests' fixtures (review_app, review_client, rt, client).
pytest_plugins = ["tests.review_helpers"]
