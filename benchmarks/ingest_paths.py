"""CPU of the ingest path's pieces, each against the code it replaced, in one run.

Each pair runs the same input through the old and the new code on a private
embedded Redis, alternating, `--reps` times; reported per item (record, event or
key), as medians: the Redis server's CPU (INFO cpu; nothing else uses that server)
and this process's (time.process_time, which includes redis-py's packing and
parsing). The old code is kept here, verbatim where it was a script, so the
comparison can be run again. The last line is one JSON object with every figure.

    python benchmarks/ingest_paths.py [--reps 15] [--batch 2000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from pipeline_throughput import NS as generate_namespace
from pipeline_throughput import generate

from feedbackguard import keys, scripts
from feedbackguard.checks.base import CheckContext, Findings
from feedbackguard.checks.ratelimit import RateLimitCheck, ip_scopes, to_us
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.events import FeedbackEvent
from feedbackguard.inbox_writer import UNCAPPED
from feedbackguard.pipeline import engine, inbox, ledger, state
from feedbackguard.pipeline.decide import decide
from feedbackguard.pipeline.replay import push
from feedbackguard.pipeline.runtime import Runtime, default_checks
from feedbackguard.policy.store import PolicyStore, PolicyVersion
from feedbackguard.settings import Settings

NS = "paths"
RECORD_BYTES = 700
DECISION_BATCHES = 5
RATELIMIT_BATCHES = 10
GC_BATCHES = 10
"""About the size of an ingest record (event JSON and one decision)."""

# The scripts the pipeline used before, verbatim.
OLD_SET_RECORDS = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  if ttl > 0 then
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl)
  else
    redis.call('SET', KEYS[i], ARGV[i + 1])
  end
end
return #KEYS
"""

OLD_GCRA = """
local MGET_CHUNK = 1000 -- keys per MGET (unpack() is bounded by the Lua C stack)
local call = redis.call
local format = string.format
local floor = math.floor
local args = cjson.decode(ARGV[1])
local limits = args.l
local plans = args.p
local age = args.age
local grace = args.grace
local value = {}
for first = 1, #KEYS, MGET_CHUNK do
  local last = math.min(first + MGET_CHUNK - 1, #KEYS)
  local got = call('MGET', unpack(KEYS, first, last))
  for i = first, last do
    local v = got[i - first + 1]
    if v then value[i] = tonumber(v) end
  end
end
local changed = {}  -- limit key index -> latest event time that advanced it
local seen = {}     -- first-seen key index -> latest event time of the account
local out = {}
for pos, ev in ipairs(args.e) do
  local now = ev[1]
  local fs = ev[2]
  local tier = ev[3]
  local plan = plans[ev[4]]
  if fs > 0 then
    local first = value[fs]
    if first == nil or now < first then
      first = now
      value[fs] = now
    end
    if seen[fs] == nil or now > seen[fs] then seen[fs] = now end
    if now - first < age then tier = 1 else tier = 0 end
  end
  local tau_at = 2 + 2 * tier
  local over = false
  for j = 1, #plan do
    local k = ev[4 + j]
    if k > 0 then
      local tat = value[k]
      if tat ~= nil and tat - now > limits[plan[j]][tau_at] then
        over = true
        out[#out + 1] = pos - 1
        out[#out + 1] = 2 * (plan[j] - 1) + tier
      end
    end
  end
  if not over then
    local t_at = 1 + 2 * tier
    for j = 1, #plan do
      local k = ev[4 + j]
      if k > 0 then
        local tat = value[k]
        if tat == nil or tat < now then tat = now end
        value[k] = tat + limits[plan[j]][t_at]
        local last = changed[k]
        if last == nil or now > last then changed[k] = now end
      end
    end
  end
end
for k, now in pairs(changed) do
  local tat = value[k]
  call('PSETEX', KEYS[k], floor((tat - now) / 1000) + 1 + grace, format('%d', tat))
end
if age > 0 then
  local age_ms = floor(age / 1000) + 1
  for k, _ in pairs(seen) do
    call('PSETEX', KEYS[k], age_ms, format('%d', value[k]))
  end
end
return out
"""


def redis_cpu_s(r: redis.Redis[bytes]) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Pairs:
    """Runs old and new code alternately and keeps each one's CPU per item."""

    def __init__(self, r: redis.Redis[bytes], reps: int) -> None:
        self.r = r
        self.reps = reps
        self.results: dict[str, float] = {}

    def compare(
        self,
        name: str,
        items: int,
        old: Callable[[int], Any],
        new: Callable[[int], Any],
        setup: Callable[[int], Any] = lambda rep: None,
    ) -> None:
        """`old(rep)` and `new(rep)` do the same work on `items` items; `setup(rep)`
        prepares each repetition (not measured)."""
        got: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for rep in range(self.reps):
            for which, fn in (("old", old), ("new", new)):
                setup(rep)
                before = redis_cpu_s(self.r)
                started = time.process_time()
                fn(rep)
                took = time.process_time() - started
                got[which].append((redis_cpu_s(self.r) - before, took))
        line = [f"{name:38s}"]
        for which in ("old", "new"):
            server = statistics.median(s for s, _ in got[which]) * 1e6 / items
            client = statistics.median(c for _, c in got[which]) * 1e6 / items
            self.results[f"{name}_{which}_redis_us"] = round(server, 2)
            self.results[f"{name}_{which}_worker_us"] = round(client, 2)
            line.append(f"{which}: Redis {server:6.2f} us, worker {client:6.2f} us")
        print("  ".join(line), file=sys.stderr)


def records(pairs: Pairs, r: redis.Redis[bytes], batch: int) -> None:
    """Decision records written in one MULTI, without and with an expiry."""
    old_sha = r.script_load(OLD_SET_RECORDS)
    record = b"x" * RECORD_BYTES

    def rows(rep: int, tag: str) -> list[tuple[str, bytes]]:
        return [(f"{tag}{rep}-{i}", record) for i in range(batch)]

    for ttl in (None, 3600):

        def old(rep: int, ttl: int | None = ttl) -> None:
            pipe = r.pipeline(transaction=True)
            written = rows(rep, f"old{ttl}-")
            names = [keys.record(NS, event_id) for event_id, _ in written]
            pipe.evalsha(old_sha, len(names), *names, ttl or 0, *(rec for _, rec in written))
            pipe.execute()

        def new(rep: int, ttl: int | None = ttl) -> None:
            pipe = r.pipeline(transaction=True)
            ledger.write_records(pipe, NS, rows(rep, f"new{ttl}-"), ttl)
            pipe.execute()

        pairs.compare(f"records_{'ttl' if ttl else 'waiting'}", batch, old, new)


def dedupe(pairs: Pairs, r: redis.Redis[bytes], batch: int) -> None:
    """Which of a batch's event ids have no record yet (none has, the usual case)."""

    def old(rep: int) -> None:
        scripts.run(r, "missing", [keys.record(NS, f"none{rep}-{i}") for i in range(batch)])

    def new(rep: int) -> None:
        ledger.missing(r, NS, [f"none{rep}-{i}" for i in range(batch)])

    pairs.compare("dedupe", batch, old, new)


def checked_batches(
    r: redis.Redis[bytes], batch: int, count: int
) -> list[tuple[list[FeedbackEvent], list[bytes], Findings]]:
    """`count` batches of the pipeline benchmark's traffic with what every default
    check found in them (checked in order, so that later batches meet the state
    earlier ones left: rate limits, consensus)."""
    events = generate(batch * count, accounts=max(1000, batch * count // 5))
    policy = PolicyStore(r).current().policy
    out = []
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        findings: Findings = {}
        for check in default_checks():
            ctx = CheckContext(redis=r, policy=policy, namespace=NS, earlier=findings)
            for index, reasons in check(chunk, ctx).items():
                findings.setdefault(index, []).extend(reasons)
        out.append((chunk, [e.to_json() for e in chunk], findings))
    return out


def old_first_decisions(
    events: list[FeedbackEvent], raws: list[bytes], findings: Findings, current: PolicyVersion
) -> list[state.Change]:
    """The ingest's decision loop before `engine.first_decisions`, verbatim."""
    now = datetime.now(UTC)
    probation = current.policy.probation_s
    changes: list[state.Change] = []
    for index, (event, raw) in enumerate(zip(events, raws, strict=True)):
        decision = decide(
            event.event_id,
            findings.get(index, []),
            current.policy.thresholds,
            current.version,
            now,
        )
        received = event.received_at.timestamp()
        changes.append(
            state.change(
                ledger.RawRecord(raw, [decision.model_dump(mode="json")]),
                account_id=event.account_id,
                received_at=received,
                due=received + probation,
            )
        )
    return changes


def decisions(pairs: Pairs, r: redis.Redis[bytes], batch: int) -> None:
    """The first decisions of checked batches, as the state changes that write them."""
    batches = checked_batches(r, batch, DECISION_BATCHES)
    current = PolicyStore(r).current()

    def old(rep: int) -> None:
        for events, raws, findings in batches:
            old_first_decisions(events, raws, findings, current)

    def new(rep: int) -> None:
        for events, raws, findings in batches:
            engine.first_decisions(events, raws, findings, {}, current)

    pairs.compare("decisions", batch * len(batches), old, new)


def old_ratelimit(
    check: RateLimitCheck, events: Sequence[FeedbackEvent], ctx: CheckContext, sha: str
) -> Findings:
    """`RateLimitCheck.__call__` before: a key string built and hashed per event and
    limit, a JSON array per event (`OLD_GCRA`)."""
    policy = ctx.policy.ratelimit
    plan = check._plan(ctx.namespace, policy)
    kinds = plan.kinds
    age_us = plan.age_us
    fs_prefix = plan.first_seen_prefix
    key_list: list[str] = []
    key_index: dict[str, int] = {}
    rows: list[list[int]] = []
    positions: list[int] = []
    for pos, event in enumerate(events):
        kind = kinds.get(event.kind)
        if kind is None:
            continue
        now = to_us(event.received_at)
        first_seen = 0
        new = 0
        if event.account_created_at is not None:
            new = int(now - to_us(event.account_created_at) < age_us)
        elif kind.tiered and age_us > 0:
            key = fs_prefix + event.account_id
            first_seen = key_index.get(key, 0)
            if not first_seen:
                key_list.append(key)
                first_seen = key_index[key] = len(key_list)
        ips = ip_scopes(event.ip)
        values = (
            event.account_id,
            ips[0] if ips else None,
            ips[1] if ips else None,
            event.device_id or None,
            event.item_id,
            event.kind,
        )
        row = [now, first_seen, new, kind.number]
        for scope, prefix in kind.keys:
            value = values[scope]
            if value is None:
                row.append(0)
                continue
            key = prefix + value
            index = key_index.get(key, 0)
            if not index:
                key_list.append(key)
                index = key_index[key] = len(key_list)
            row.append(index)
        rows.append(row)
        positions.append(pos)
    blob = b"".join((plan.header, b',"e":', orjson.dumps(rows), b"}"))
    over: list[int] = ctx.redis.evalsha(sha, len(key_list), *key_list, blob)
    return check._findings(plan, positions, over)


def ratelimit(pairs: Pairs, r: redis.Redis[bytes], batch: int) -> None:
    """The rate-limit check over a day of traffic, batch after batch, from empty state
    (a namespace per run); old and new must find the same."""
    events = generate(batch * RATELIMIT_BATCHES, accounts=max(1000, batch * 2))
    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    policy = PolicyStore(r).current().policy
    sha = r.script_load(OLD_GCRA)
    check = RateLimitCheck()
    found: dict[str, list[Findings]] = {}

    def run(
        which: str, rep: int, fn: Callable[[list[FeedbackEvent], CheckContext], Findings]
    ) -> None:
        ctx = CheckContext(redis=r, policy=policy, namespace=f"rl-{which}-{rep}")
        found[which] = [fn(chunk, ctx) for chunk in chunks]

    pairs.compare(
        "ratelimit",
        len(events),
        lambda rep: run("old", rep, lambda chunk, ctx: old_ratelimit(check, chunk, ctx, sha)),
        lambda rep: run("new", rep, check),
    )
    if found["old"] != found["new"]:
        raise SystemExit("the rate-limit check found other events than before")


def ingest_gc(pairs: Pairs, r: redis.Redis[bytes], batch: int, home: Path) -> None:
    """Ingest in this process (every default check), with the objects that exist
    before it under the garbage collector's watch (old) or frozen out of it (new,
    what `feedbackguard worker` does once started)."""
    events = generate(batch * GC_BATCHES, accounts=max(1000, batch * GC_BATCHES // 5))
    url = r.connection_pool.connection_kwargs["path"]
    settings = Settings(home=home, redis_url=f"unix://{url}", clock="events", batch_size=batch)
    pipeline = Runtime.build(settings).pipeline

    def setup(rep: int) -> None:
        r.flushdb()
        PolicyStore(r).current()
        inbox.ensure_group(r, generate_namespace)
        push(r, events, UNCAPPED)

    def ingest(frozen: bool) -> None:
        if frozen:
            gc.freeze()
        try:
            while pipeline.ingest_batch(generate_namespace, "paths").entries:
                pass
        finally:
            gc.unfreeze()

    try:
        pairs.compare(
            "ingest_gc", len(events), lambda rep: ingest(False), lambda rep: ingest(True), setup
        )
    finally:
        pipeline.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-paths-"))
    server = EmbeddedRedis(home)
    r: redis.Redis[bytes] = redis.Redis.from_url(server.start())
    try:
        pairs = Pairs(r, args.reps)
        records(pairs, r, args.batch)
        dedupe(pairs, r, args.batch)
        decisions(pairs, r, args.batch)
        ratelimit(pairs, r, args.batch)
        ingest_gc(pairs, r, args.batch, home)
    finally:
        r.close()
        server.stop()
    print(json.dumps(pairs.results))


if __name__ == "__main__":
    main()
