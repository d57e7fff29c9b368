"""schemathesis against /v1/openapi.json: no 5xx, no schema violations.

Uses the same runner as benchmarks/admin_api.py (which records the figures in
docs/benchmarks.md) with fewer cases per operation to stay fast.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

from feedbackguard.pipeline.runtime import Runtime
from feedbackguard.settings import Settings
from feedbackguard.web import auth
from feedbackguard.web.server import create_app

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 5


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "admin_api.py"
    spec = importlib.util.spec_from_file_location("admin_api_bench", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rt(r: redis.Redis[bytes], tmp_path: Path, redis_url: str) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path / "home", redis_url=redis_url, auth_fail_limit=1_000_000)
    runtime = Runtime.build(settings, create_store=True)
    yield runtime
    runtime.close()


def test_schemathesis_finds_no_server_errors_or_schema_violations(rt: Runtime) -> None:
    _, secret = auth.add_key(rt.redis, "fuzz", "admin")
    found = _bench().fuzz(
        create_app(rt), {"Authorization": f"Bearer {secret}"}, EXAMPLES_PER_OPERATION
    )
    assert found["requests"] >= found["operations"] * 2
    assert found["server_errors"] == 0
    assert found["failures"] == []
