"""Shared fixtures: a real Redis and a real SQL database for every test.

Set FEEDBACKGUARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15; the database is
flushed before each test) and FEEDBACKGUARD_TEST_DATABASE_URL (a PostgreSQL URL; each
test gets its own schema) to use servers; without them an embedded Redis is started
and the store is SQLite, so the suite passes on a bare machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
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
    """A bytes-mode client on an empty database."""
    client = redis.Redis.from_url(redis_url)
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
    s = Store(store_url, b"k" * 32)
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


# The review tests' fixtures (review_pipeline, review_app, review_client).
pytest_plugins = ["tests.review_helpers"]
