"""Admin API benchmark: policy propagation time to a running worker, and a schemathesis
run against /v1/openapi.json (generated requests, server errors, schema violations).

Run: .venv/bin/python benchmarks/admin_api.py [--examples N]
(FEEDBACKGUARD_REDIS_URL to use a server, else an embedded Redis; SQLite store in a
temporary home). Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def fuzz(app: Any, headers: dict[str, str], examples: int) -> dict[str, Any]:
    """Run schemathesis over every operation: `examples` generated cases each, valid
    (positive) and invalid (negative) ones."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    requests = 0
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for result, mode in ((res, m) for res in schema.get_all_operations() for m in modes):
        op = result.ok()
        operations += mode is modes[0]

        @given(case=op.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            nonlocal requests
            requests += 1
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            try:
                # positive_data_acceptance is off: free-form policy objects and list
                # values are schema-valid yet semantically invalid (422 is documented).
                case.validate_response(
                    response, headers=headers, excluded_checks=[positive_data_acceptance]
                )
            except BaseException as exc:  # a check failed: record it, keep going
                failures.append(f"{case.method.upper()} {case.path}: {str(exc).splitlines()[0]}")

        run()
    return {
        "operations": operations,
        "requests": requests,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "check_failures": len(failures),
        "failures": sorted(set(failures))[:20],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def propagation(rt: Any, client: Any, headers: dict[str, str], runs: int) -> dict[str, float]:
    """Seconds from an admin PATCH to a running worker's PolicyStore seeing it."""
    worker = rt.pipeline.policies
    times = []
    for i in range(runs):
        before = worker.current().version
        started = time.monotonic()
        client.patch("/api/v1/policy", json={"patch": {"probation_s": 100 + i}}, headers=headers)
        while worker.current().version == before:
            time.sleep(0.01)
        times.append(time.monotonic() - started)
    return {"median_s": statistics.median(times), "max_s": max(times), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=50, help="cases per operation")
    parser.add_argument("--propagation-runs", type=int, default=5)
    args = parser.parse_args()

    from feedbackguard.pipeline.runtime import Runtime
    from feedbackguard.settings import Settings
    from feedbackguard.web import auth
    from feedbackguard.web.server import create_app

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), auth_fail_limit=1_000_000)
        rt = Runtime.build(settings)
        app = create_app(rt)
        _, secret = auth.add_key(rt.redis, "bench", "admin")
        headers = {"Authorization": f"Bearer {secret}"}
        prop = propagation(rt, app.test_client(), headers, args.propagation_runs)
        fuzzed = fuzz(app, headers, args.examples)
        rt.close()
    result = {
        "policy_cache_s": settings.policy_cache_s,
        "propagation_median_s": round(prop["median_s"], 3),
        "propagation_max_s": round(prop["max_s"], 3),
        "propagation_runs": prop["runs"],
        "schemathesis_examples_per_operation": args.examples,
        **{f"schemathesis_{k}": v for k, v in fuzzed.items()},
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
