"""The policy dry run: what a proposed policy would have done to a namespace's recent
feedback, found by running it through the real pipeline.

The last `hours` of the namespace's events (event time, up to its clock) are
replayed twice, in event-time order, through every check and analyser: once under
the policy in force (the baseline) and once under the candidate, each in a scratch
namespace of its own (`dryrun-<random>`), and the two outcomes are compared event by
event. A move is an event whose status differs (baseline -> candidate), reported
with the reason codes gained (+) or lost (-), the accounts' populations (by age) and
a few example event ids. Comparing two replays, rather than a replay with the live
statuses, keeps what a replay cannot reproduce out of the moves: the state before
the first replayed event (rate-limit budgets, consensus votes, the graph window
start empty), and moderators' decisions (each replay keeps its review items in
review). How far the baseline agrees with the live statuses is reported beside.

Where the events come from: the graph window (`fg:{ns}:graph:*`, the last
`graph.window_s` of event time, 7 days by default) names the events, and their
records (`fg:{ns}:ev:<id>`, kept `outcome_ttl_s` after a final status) hold each
event as captured. Hours before the window's start cannot be replayed (the report
says so), records already expired are counted as missing, and with `graph.enabled`
false no window is kept, so there is nothing to replay.

Nothing live is written. The scratch namespaces are not in `fg:namespaces` (so no
worker ever sees them) and are deleted afterwards; releases go to a throw-away SQLite
store; audit entries the runs would write (drift alerts, lockdown, suspected
triggers) are held back (`audit.held_back`) and counted in the report. What is read
from the live namespace besides the events: moderators' outcomes per account (trust
seeds, reputation) and its lockdown, copied into each scratch namespace; the admin
lists and account states are read where they are.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from feedbackguard import audit, keys, scripts
from feedbackguard.checks.graph import load_window
from feedbackguard.consistency import knn
from feedbackguard.inbox_writer import SCRIPT, UNCAPPED, script_args
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.pipeline.runtime import default_analysers, default_checks
from feedbackguard.policy import Policy
from feedbackguard.policy.disables import disables
from feedbackguard.policy.store import PolicyStore, PolicyVersion
from feedbackguard.store import Store

DEFAULT_HOURS = 24.0
"""Hours of event time replayed when not told otherwise."""
DEFAULT_MAX_EVENTS = 50_000
"""The newest events replayed at most when not told otherwise (the dry run's cost is
linear in them: docs/benchmarks.md, "Policy dry run")."""
EXAMPLES_PER_MOVE = 5
SCRATCH_PREFIX = "dryrun-"
CONSUMER = "dry-run"
LOAD_CHUNK = 2000
"""Records read per MGET."""
DELETE_CHUNK = 1000
"""Scratch keys deleted per UNLINK."""
UNKNOWN_AGE = "age unknown"
METHOD = (
    "the window's events replayed through every check and analyser under the policy in "
    "force and under the candidate, each in a scratch namespace, compared event by event; "
    "each replay starts with empty rate-limit budgets, votes and graph window, and keeps "
    "items in review where a moderator decided live"
)


class FixedPolicy(PolicyStore):
    """A policy store that answers one version and reads or writes nothing."""

    def __init__(self, r: redis.Redis[bytes], version: PolicyVersion) -> None:
        super().__init__(r, cache_s=math.inf)
        self._version = version

    def current(self) -> PolicyVersion:
        return self._version

    def set(self, *args: Any, **kwargs: Any) -> PolicyVersion:
        raise RuntimeError("a dry run never changes the policy")


@dataclass(frozen=True)
class Source:
    """The events to replay (oldest first) and what is known of them live."""

    ids: list[str]
    raws: list[bytes]
    times: list[float]
    populations: list[str]
    live: list[str]
    """The live status of each event."""
    moderated: list[bool]
    """Whether a moderator decided the event live."""
    window_start: float
    missing: int
    truncated: bool


@dataclass(frozen=True)
class Outcome:
    status: str
    codes: frozenset[str]


@dataclass
class Move:
    """Events whose status differs: baseline `old` -> candidate `new`."""

    old: str
    new: str
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    populations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


@dataclass
class Report:
    namespace: str
    since: float
    until: float
    window_start: float
    events: int
    missing: int
    truncated: bool
    baseline: dict[str, int]
    candidate: dict[str, int]
    moves: list[Move]
    live_compared: int
    live_agreed: int
    moderated: int
    audit: dict[str, dict[str, int]]
    disables: list[str]
    notes: list[str]
    seconds: float
    method: str = METHOD

    @property
    def changed(self) -> int:
        return sum(move.count for move in self.moves)


def dry_run(
    r: redis.Redis[bytes],
    namespace: str,
    current: PolicyVersion,
    candidate: Policy,
    *,
    hours: float = DEFAULT_HOURS,
    max_events: int = DEFAULT_MAX_EVENTS,
    batch_size: int,
) -> Report:
    """How the last `hours` of `namespace` would have been decided under `candidate`,
    against `current` (see the module docstring), ingesting `batch_size` events at a
    time (the workers' setting). Writes nothing live."""
    started = time.perf_counter()
    until = ledger.clock(r, namespace)
    since = until - hours * 3600.0
    source = load_source(r, namespace, since, current.policy, candidate, max_events)
    proposed = PolicyVersion(
        version=0, policy=candidate, author="dry run", created_at=datetime.now(UTC)
    )
    base, base_audit = replay_scratch(r, namespace, source, current, until, batch_size)
    cand, cand_audit = replay_scratch(r, namespace, source, proposed, until, batch_size)
    compared = [i for i, moderated in enumerate(source.moderated) if not moderated]
    return Report(
        namespace=namespace,
        since=since,
        until=until,
        window_start=source.window_start,
        events=len(source.ids),
        missing=source.missing,
        truncated=source.truncated,
        baseline=dict(Counter(o.status for o in base)),
        candidate=dict(Counter(o.status for o in cand)),
        moves=moves(source, base, cand),
        live_compared=len(compared),
        live_agreed=sum(base[i].status == source.live[i] for i in compared),
        moderated=len(source.moderated) - len(compared),
        audit={"baseline": base_audit, "candidate": cand_audit},
        disables=disables(current.policy, candidate),
        notes=notes(r, current.policy, candidate, since, source),
        seconds=time.perf_counter() - started,
    )


def load_source(
    r: redis.Redis[bytes],
    namespace: str,
    since: float,
    current: Policy,
    candidate: Policy,
    max_events: int,
) -> Source:
    """The newest `max_events` events of the window after `since`, oldest first, with
    their live records."""
    rows = load_window(r, namespace, since, current.graph)
    newest = rows.newest_first(max_events)
    picked = newest[::-1]
    young_s = candidate.ratelimit.new_account_age_s
    ids: list[str] = []
    raws: list[bytes] = []
    times: list[float] = []
    populations: list[str] = []
    live: list[str] = []
    moderated: list[bool] = []
    missing = 0
    for offset in range(0, len(picked), LOAD_CHUNK):
        chunk = picked[offset : offset + LOAD_CHUNK]
        records = ledger.load_raw(r, namespace, [row.event_id for row in chunk])
        for row, record in zip(chunk, records, strict=True):
            if record is None:
                missing += 1
                continue
            ids.append(row.event_id)
            raws.append(record.event_json)
            times.append(row.time)
            populations.append(population(row.time, row.account_created, young_s))
            live.append(record.status)
            moderated.append(
                any(str(d["decided_by"]).startswith("moderator:") for d in record.trail)
            )
    start = r.zrange(keys.graph_buckets(namespace), 0, 0, withscores=True)
    return Source(
        ids=ids,
        raws=raws,
        times=times,
        populations=populations,
        live=live,
        moderated=moderated,
        window_start=float(start[0][1]) if start else since,
        missing=missing,
        truncated=len(rows) > len(newest),
    )


def population(received: float, created: float | None, young_s: float) -> str:
    """The account's age class at the event: young (under the rate limits'
    `new_account_age_s`), established, or unknown (the event claims no creation time)."""
    if created is None:
        return UNKNOWN_AGE
    return "young account" if received - created < young_s else "established account"


def replay_scratch(
    r: redis.Redis[bytes],
    namespace: str,
    source: Source,
    version: PolicyVersion,
    until: float,
    batch_size: int,
) -> tuple[list[Outcome], dict[str, int]]:
    """Each source event's outcome when replayed under `version` in a scratch
    namespace, and the audit entries the run would have written, by action."""
    scratch = SCRATCH_PREFIX + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="feedbackguard-dry-run-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'store.db'}", secrets.token_bytes(32))
        try:
            with audit.held_back() as held:
                copy_context(r, namespace, scratch)
                pipeline = Pipeline(
                    r=r,
                    store=store,
                    policies=FixedPolicy(r, version),
                    checks=default_checks(),
                    analysers=default_analysers(),
                    batch_size=batch_size,
                    release_batch=batch_size,
                )
                run(pipeline, scratch, source, until)
                outcomes = read_outcomes(r, scratch, source.ids)
        finally:
            store.close()
            drop(r, scratch)
    return outcomes, dict(Counter(str(entry["action"]) for entry in held))


def copy_context(r: redis.Redis[bytes], namespace: str, scratch: str) -> None:
    """What the live namespace knows that the replayed events do not carry: the
    moderators' outcomes per account and the lockdown (read live, written to scratch)."""
    for approved in (True, False):
        dumped = r.dump(keys.moderated(namespace, approved))
        if dumped is not None:
            r.restore(keys.moderated(scratch, approved), 0, dumped)
    locked = r.get(keys.lockdown(namespace))
    if locked is not None:
        r.set(keys.lockdown(scratch), locked)


def run(pipeline: Pipeline, scratch: str, source: Source, until: float) -> None:
    """Feed the events to the scratch inbox in event-time order, as `feedbackguard
    replay` does: ingest in batches, analysis once the clock has moved the policy's
    `analysis.max_lag_s` past the last run (replay lets analysis lag that far; live
    workers run it every `interval_s` when they keep up), releases up to the horizon;
    at the end the clock moves to `until` (the live namespace's clock) for a last
    analysis and release."""
    r = pipeline.r
    analysis = pipeline.policies.current().policy.analysis
    interval = max(analysis.interval_s, analysis.max_lag_s)
    inbox.ensure_group(r, scratch)
    batch: list[bytes] = []
    last = ledger.analysed(r, scratch)
    for raw, t in zip(source.raws, source.times, strict=True):
        batch.append(raw)
        if len(batch) >= pipeline.batch_size or t >= last + interval:
            ingest(pipeline, scratch, batch)
            batch = []
            last = tick(pipeline, scratch, interval)
    ingest(pipeline, scratch, batch)
    pipe = r.pipeline(transaction=False)
    ledger.advance_clock(pipe, scratch, until)
    pipe.execute()
    tick(pipeline, scratch, interval)


def ingest(pipeline: Pipeline, scratch: str, raws: Sequence[bytes]) -> None:
    """Append to the scratch inbox (not through `inbox_writer.queue_add`: that names
    the namespace in `fg:namespaces`, where workers would find it) and ingest."""
    if not raws:
        return
    scripts.run(pipeline.r, SCRIPT, [keys.inbox(scratch)], script_args(UNCAPPED, False, raws))
    while pipeline.ingest_batch(scratch, CONSUMER).entries:
        pass


def tick(pipeline: Pipeline, scratch: str, interval: float) -> float:
    """Analysis when due, then every release due; the time analysed up to."""
    r = pipeline.r
    if ledger.clock(r, scratch) - ledger.analysed(r, scratch) >= interval:
        pipeline.analyse(scratch)
    while pipeline.release(scratch):
        pass
    return ledger.analysed(r, scratch)


def read_outcomes(r: redis.Redis[bytes], scratch: str, ids: Sequence[str]) -> list[Outcome]:
    out: list[Outcome] = []
    for offset in range(0, len(ids), LOAD_CHUNK):
        for record in ledger.load_raw(r, scratch, ids[offset : offset + LOAD_CHUNK]):
            if record is None:  # a check crashed on it: a dead letter
                out.append(Outcome("dead", frozenset()))
                continue
            last = record.trail[-1]
            out.append(Outcome(str(last["status"]), frozenset(x["code"] for x in last["reasons"])))
    return out


def drop(r: redis.Redis[bytes], scratch: str) -> None:
    """Delete every key of the scratch namespace, and its cached kNN reference."""
    batch: list[bytes] = []
    for key in r.scan_iter(match=keys.ns(scratch, "*"), count=DELETE_CHUNK):
        batch.append(key)
        if len(batch) >= DELETE_CHUNK:
            r.unlink(*batch)
            batch = []
    if batch:
        r.unlink(*batch)
    knn.forget(scratch)


def moves(source: Source, base: Sequence[Outcome], cand: Sequence[Outcome]) -> list[Move]:
    """The events whose status differs, grouped by (baseline, candidate) status."""
    found: dict[tuple[str, str], Move] = {}
    for i, (old, new) in enumerate(zip(base, cand, strict=True)):
        if old.status == new.status:
            continue
        move = found.setdefault((old.status, new.status), Move(old.status, new.status))
        move.count += 1
        move.reasons.update(reason_changes(old.codes, new.codes))
        move.populations[source.populations[i]] += 1
        if len(move.examples) < EXAMPLES_PER_MOVE:
            move.examples.append(source.ids[i])
    return sorted(found.values(), key=lambda m: (-m.count, m.old, m.new))


def reason_changes(old: frozenset[str], new: frozenset[str]) -> Iterable[str]:
    """The codes the candidate adds (+code) or drops (-code); the same codes scored
    against other thresholds when neither (the candidate's, unprefixed)."""
    changed = [f"+{c}" for c in sorted(new - old)] + [f"-{c}" for c in sorted(old - new)]
    return changed or sorted(new) or ["(no reason)"]


def notes(
    r: redis.Redis[bytes], current: Policy, candidate: Policy, since: float, source: Source
) -> list[str]:
    """What the operator should know besides the moves."""
    out = []
    if since < source.window_start:
        out.append(
            "the graph window holds events only from "
            f"{datetime.fromtimestamp(source.window_start, UTC).isoformat()} "
            "(graph.window_s): earlier hours were not replayed"
        )
    if not current.graph.enabled:
        out.append("graph.enabled is false in the policy in force: no window, nothing replayed")
    if source.truncated:
        out.append(f"only the newest {len(source.ids) + source.missing} events were replayed")
    if source.missing:
        out.append(f"{source.missing} events of the window had no record left (outcome_ttl_s)")
    probation = probation_note(r, current, candidate)
    if probation:
        out.append(probation)
    return out


def probation_note(r: redis.Redis[bytes], current: Policy, candidate: Policy) -> str | None:
    """When `probation_s` changes: it is not retroactive, and how many items it leaves
    waiting on their old release time (every namespace)."""
    if current.probation_s == candidate.probation_s:
        return None
    pipe = r.pipeline(transaction=False)
    for member in r.smembers(keys.namespaces()):
        pipe.zcard(keys.pending(member.decode()))
    waiting = sum(int(n) for n in pipe.execute())
    return (
        f"probation_s {current.probation_s:g} -> {candidate.probation_s:g} applies to events "
        f"ingested from now on; the {waiting} item(s) pending now keep the release time they "
        "were given (probation is not retroactive)"
    )
