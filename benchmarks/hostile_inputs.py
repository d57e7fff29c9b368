"""What hostile configuration and input cost: the denial-of-service probes of the
security review, measured against today's code.

* a text trigger `(a+)+$` scanned over attacker text: feedbackguard's matcher (RE2,
  `policy.compile_trigger`) against the standard library's backtracking `re` in the
  same run (the backtracking engine only up to `--re-max-chars`: its time doubles
  per character);
* a 10 MB policy of 400,000 trigger regexes proposed to the admin path
  (`policy.merge.proposed`): refused, and how long refusing takes;
* capture of a feedback body nested 1,000 deep and of a 50 MiB body through a Flask
  app guarded by FeedbackGuard: the status answered and the time taken (the product's
  view must never run, and never a 500).

Usage: python benchmarks/hostile_inputs.py [--re-max-chars 24]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import flask

from feedbackguard.capture import FeedbackGuard
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.policy import Policy, PolicyTooLarge, compile_trigger
from feedbackguard.policy.merge import proposed

PATTERN = "(a+)+$"
POLICY_TRIGGERS = 400_000
NESTED_DEPTH = 1_000
HUGE_BODY_BYTES = 50 * 1024 * 1024


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def regex_figures(re_max_chars: int) -> dict[str, Any]:
    """Seconds to scan attacker text ending in a non-matching character."""
    guarded = compile_trigger(PATTERN)
    naive = re.compile(PATTERN)
    out: dict[str, Any] = {}
    for chars in (16, 20, re_max_chars, 64 * 1024):
        text = "a" * chars + "!"
        _, took = _timed(lambda text=text: guarded.search(text))
        out[f"re2_s_{chars}_chars"] = round(took, 6)
        if chars <= re_max_chars:
            _, took = _timed(lambda text=text: naive.search(text))
            out[f"backtracking_re_s_{chars}_chars"] = round(took, 6)
    return out


def policy_figures() -> dict[str, Any]:
    """A 10 MB policy of many regexes, proposed as an admin would."""
    current = Policy.default()
    whole = current.model_dump(mode="json")
    whole["consistency"]["triggers"]["text"] = [
        f"(attack{i:07d})+ trigger" for i in range(POLICY_TRIGGERS)
    ]
    started = time.perf_counter()
    try:
        proposed(current, whole, None)
        outcome = "accepted"
    except PolicyTooLarge:
        outcome = "refused: PolicyTooLarge"
    took = time.perf_counter() - started
    return {
        "policy_bytes": len(json.dumps(whole)),
        "policy_outcome": outcome,
        "policy_decide_s": round(took, 4),
    }


def capture_figures(home: Path) -> dict[str, Any]:
    """Status and seconds for a deeply nested and a huge body."""
    server = EmbeddedRedis(home)
    url = server.start()
    try:
        app = flask.Flask(__name__)
        app.config.update(FEEDBACKGUARD_REDIS_URL=url, FEEDBACKGUARD_HOME=str(home))
        guard = FeedbackGuard(app)
        reached = []

        @app.post("/items/<item_id>/feedback")
        @guard.feedback(kind="label", account="header:X-User", item="view:item_id",
                        value="json:label", account_created_at="json:created")  # fmt: skip
        def feedback(item_id: str) -> dict[str, Any]:
            reached.append(item_id)
            return {"ok": True}

        client = app.test_client()
        nested = '{"label": ' + "[" * NESTED_DEPTH + "]" * NESTED_DEPTH + "}"
        huge = b'{"label": "' + b"a" * HUGE_BODY_BYTES + b'"}'
        out: dict[str, Any] = {}
        for name, body in (("nested", nested.encode()), ("huge", huge)):
            response, took = _timed(
                lambda body=body: client.post(
                    "/items/i/feedback",
                    data=body,
                    content_type="application/json",
                    headers={"X-User": "u"},
                )
            )
            out[f"{name}_status"] = response.status_code
            out[f"{name}_s"] = round(took, 4)
        out["view_reached"] = len(reached)
        guard.close()
        return out
    finally:
        server.stop()


@click.command()
@click.option("--re-max-chars", type=click.IntRange(16, 30), default=24, show_default=True,
              help="Longest text the backtracking baseline is run on.")  # fmt: skip
def main(re_max_chars: int) -> None:
    results: dict[str, Any] = {"pattern": PATTERN}
    results.update(regex_figures(re_max_chars))
    results.update(policy_figures())
    with tempfile.TemporaryDirectory(prefix="fg-bench-hostile-") as tmp:
        results.update(capture_figures(Path(tmp)))
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
