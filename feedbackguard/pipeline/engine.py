"""The per-batch path of every feedback event, and the release of ended probations.

ingest:  inbox batch -> parse -> dedupe (event_id) -> checks -> decide -> one MULTI
         writing the records, the status indexes, the counters, the event clock and
         the XACK. Either all of a batch's outcomes are written and acknowledged, or
         none are and the batch is delivered again.
release: pending items whose probation ended (event time) -> retraining store ->
         records marked admitted. The store write is idempotent on event_id, so a
         release that crashes half way is simply done again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pydantic
import redis

from feedbackguard import keys, metrics, scripts
from feedbackguard.checks.base import (
    Analyser,
    AnalysisContext,
    Check,
    CheckContext,
    Findings,
    Reason,
    Verdicts,
)
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.decide import Status, decide, json_time
from feedbackguard.policy.store import PolicyStore
from feedbackguard.review import queue
from feedbackguard.store import Store, admission_from_json

log = logging.getLogger(__name__)

# Longest a release or re-decision may hold a namespace's status lock: also how long
# a worker killed while holding it stalls the others. One release batch or one chunk
# of re-decisions takes well under a second here (docs/benchmarks.md).
STATUS_LOCK_TIMEOUT_S = 15
# Statuses still waiting for a final one: their records never expire (a release or a
# moderator that lags must not find them gone); final outcomes expire after the
# policy's outcome_ttl_s.
WAITING = ("pending", "review")
# Events re-decided per hold of the status lock.
REDECIDE_CHUNK = 2000
# Held events moved back to the inbox per script call (see requeue_held).
REQUEUE_CHUNK = 500
# Dead letters kept per namespace (the newest); each holds the raw entry and the error.
DEAD_LETTER_MAXLEN = 10_000
_RAW_PREVIEW_BYTES = 4096


def dead_letter_key(namespace: str) -> str:
    return keys.ns(namespace, "dead")


def held_key(namespace: str) -> str:
    """Unsure copies too late to dedupe (raw events, oldest first; never trimmed)."""
    return keys.ns(namespace, "held")


def requeue_held(r: redis.Redis[bytes], namespace: str) -> int:
    """Send every held event back to the inbox, to be decided as new (an operator
    knows they are); how many were moved. Each chunk moves in one script call."""
    script_keys = [held_key(namespace), keys.inbox(namespace), ledger.stats_key(namespace)]
    moved = 0
    while chunk := int(scripts.run(r, "held_requeue", script_keys, [REQUEUE_CHUNK, inbox.FIELD])):
        moved += chunk
    return moved


@dataclass
class BatchOutcome:
    """What one ingest batch did (for progress, metrics and tests)."""

    entries: int = 0
    decided: int = 0
    duplicates: int = 0
    dead: int = 0
    held: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class Redecision:
    """What re-judging events found by analysis did: status changes by (old, new)."""

    changed: dict[tuple[str, str], int] = field(default_factory=dict)
    quarantined: int = 0


@dataclass
class Pipeline:
    r: redis.Redis[bytes]
    store: Store
    policies: PolicyStore
    checks: Sequence[Check]
    analysers: Sequence[Analyser] = ()
    batch_size: int = 2000
    claim_idle_ms: int = 30_000
    release_batch: int = 2000

    def ingest_batch(
        self, namespace: str, consumer: str, block_ms: int | None = None
    ) -> BatchOutcome:
        """Read, check, decide and acknowledge one batch of the namespace's inbox."""
        inbox.ensure_group(self.r, namespace)
        entries = inbox.read_batch(
            self.r, namespace, consumer, self.batch_size, block_ms, self.claim_idle_ms
        )
        outcome = BatchOutcome(entries=len(entries))
        if not entries:
            return outcome
        started = time.perf_counter()
        current = self.policies.current()
        dead: list[dict[str, Any]] = []
        events: list[FeedbackEvent] = []
        raws: list[bytes] = []
        unsure: list[bool] = []
        seen: set[str] = set()
        for entry in entries:
            try:
                event = FeedbackEvent.from_json(entry.raw)
            except pydantic.ValidationError as exc:
                dead.append(_dead(entry.id, entry.raw, "invalid event", str(exc)))
                continue
            if event.event_id in seen:
                outcome.duplicates += 1
                continue
            seen.add(event.event_id)
            events.append(event)
            raws.append(entry.raw)
            unsure.append(entry.unsure)
        fresh = ledger.missing(self.r, namespace, [e.event_id for e in events])
        outcome.duplicates += fresh.count(False)
        # An unsure copy (inbox.py) whose first copy's record may have expired cannot
        # be proven new: it is held for an operator instead of being decided twice.
        late_before = time.time() - current.policy.outcome_ttl_s + current.policy.clock_skew_s
        kept: list[FeedbackEvent] = []
        kept_raws: list[bytes] = []
        held: list[bytes] = []
        for event, raw, new, maybe_copy in zip(events, raws, fresh, unsure, strict=True):
            if not new:
                continue
            if maybe_copy and event.received_at.timestamp() <= late_before:
                held.append(raw)
            else:
                kept.append(event)
                kept_raws.append(raw)
        events, raws = kept, kept_raws
        outcome.held = len(held)

        ctx = CheckContext(redis=self.r, policy=current.policy, namespace=namespace)
        findings, poisoned = self._run_checks(events, ctx)
        now = datetime.now(UTC)
        pipe = self.r.pipeline(transaction=True)
        pending: dict[str, float] = {}
        review: dict[str, float] = {}
        records: dict[bool, list[tuple[str, bytes]]] = {True: [], False: []}
        flagged: Counter[str] = Counter()  # reason codes of events rejected or sent to review
        for index, (event, raw) in enumerate(zip(events, raws, strict=True)):
            if index in poisoned:
                dead.append(_dead(b"", raw, "check crashed", poisoned[index]))
                continue
            decision = decide(
                event.event_id,
                findings.get(index, []),
                current.policy.thresholds,
                current.version,
                now,
            )
            record = ledger.encode_record(raw, [decision.model_dump(mode="json")])
            records[decision.status in WAITING].append((event.event_id, record))
            received = event.received_at.timestamp()
            if decision.status == "pending":
                pending[event.event_id] = received + current.policy.probation_s
            elif decision.status == "review":
                review[event.event_id] = received
                queue.index(pipe, namespace, event.event_id, ledger.Record(event, (decision,)))
            if decision.status in ("review", "rejected"):
                flagged.update({reason.code for reason in decision.reasons})
            outcome.statuses[decision.status] = outcome.statuses.get(decision.status, 0) + 1
        ledger.write_records(pipe, namespace, records[False], current.policy.outcome_ttl_s)
        ledger.write_records(pipe, namespace, records[True], None)
        outcome.decided = sum(outcome.statuses.values())
        outcome.dead = len(dead)
        if pending:
            pipe.zadd(ledger.pending_key(namespace), pending)
        if review:
            pipe.zadd(ledger.review_key(namespace), review)
        stats = ledger.stats_key(namespace)
        for status, count in outcome.statuses.items():
            pipe.hincrby(stats, status, count)
        if outcome.decided:
            pipe.hincrby(stats, "decided", outcome.decided)
        if outcome.duplicates:
            pipe.hincrby(stats, "duplicates", outcome.duplicates)
        if held:
            pipe.rpush(held_key(namespace), *held)
            pipe.hincrby(stats, "held", len(held))
        if dead:
            pipe.lpush(dead_letter_key(namespace), *(orjson.dumps(d) for d in dead))
            pipe.ltrim(dead_letter_key(namespace), 0, DEAD_LETTER_MAXLEN - 1)
            pipe.hincrby(stats, "dead", len(dead))
        if events:
            ledger.advance_clock(pipe, namespace, max(e.received_at.timestamp() for e in events))
        metrics.count_reasons(pipe, namespace, flagged)
        metrics.observe(pipe, namespace, "batch", time.perf_counter() - started)
        ids = [entry.id for entry in entries]
        pipe.xack(keys.inbox(namespace), inbox.GROUP, *ids)
        pipe.xdel(keys.inbox(namespace), *ids)
        pipe.execute()
        return outcome

    def _run_checks(
        self, events: list[FeedbackEvent], ctx: CheckContext
    ) -> tuple[Findings, dict[int, str]]:
        """Every check over the batch. A check that crashes on the batch is run event by
        event, so one poison event goes to the dead letters and the rest go on."""
        findings: Findings = {}
        poisoned: dict[int, str] = {}
        for check in self.checks:
            ctx = replace(ctx, earlier=findings)
            try:
                found = check(events, ctx)
            except Exception:
                log.exception("check %s failed on a batch; isolating the event", check.name)
                found = {}
                for index, event in enumerate(events):
                    if index in poisoned:
                        continue
                    try:
                        single = check([event], ctx)
                    except Exception as exc:
                        poisoned[index] = f"{check.name}: {type(exc).__name__}: {exc}"
                        continue
                    if 0 in single:
                        found[index] = single[0]
            for index, reasons in found.items():
                findings.setdefault(index, []).extend(reasons)
        return findings, poisoned

    def release_horizon(self, namespace: str) -> float:
        """Event time up to which probations may end now: the namespace's clock, but
        never past what the analysers have seen."""
        at = ledger.clock(self.r, namespace)
        if self.analysers:
            at = min(at, ledger.analysed(self.r, namespace))
        return at

    def release(self, namespace: str, now: float | None = None) -> int:
        """Admit up to `release_batch` items whose probation ended by `now` (event time;
        the release horizon by default). Returns how many were released."""
        with self.r.lock(ledger.lock_key(namespace), timeout=STATUS_LOCK_TIMEOUT_S):
            return self._release(namespace, self.release_horizon(namespace) if now is None else now)

    def _release(self, namespace: str, at: float) -> int:
        current = self.policies.current()
        ids = ledger.claim_due(self.r, namespace, at, self.release_batch)
        if not ids:
            return 0
        # The records are feedbackguard's own and move as JSON: no models are built, the
        # event's JSON is spliced in as it is, and the admitting decision is the last
        # one with its status and time changed (what `model_copy` + `model_dump` give),
        # several times cheaper than models (docs/benchmarks.md, "Pipeline throughput").
        decided_at = json_time(datetime.now(UTC))
        admitted: dict[str, ledger.RawRecord] = {}
        for event_id, record in zip(ids, ledger.load_raw(self.r, namespace, ids), strict=True):
            if record is None or record.status != "pending":
                continue  # expired, or re-decided by analysis before the claim
            final = {**record.trail[-1], "status": "admitted", "decided_at": decided_at}
            admitted[event_id] = record.then(final)
        self.store.admit_encoded(
            [admission_from_json(rec.event_json, rec.trail) for rec in admitted.values()]
        )
        pipe = self.r.pipeline(transaction=True)
        records = [(event_id, rec.to_json()) for event_id, rec in admitted.items()]
        ledger.write_records(pipe, namespace, records, current.policy.outcome_ttl_s)
        pipe.zrem(ledger.releasing_key(namespace), *ids)
        if admitted:
            pipe.hincrby(ledger.stats_key(namespace), "admitted", len(admitted))
            pipe.hincrby(ledger.stats_key(namespace), "pending", -len(admitted))
        pipe.execute()
        return len(admitted)

    def analyse(self, namespace: str) -> Redecision:
        """Run every analyser over the window ending at the namespace's clock and
        re-judge what they found; then mark the clock time as analysed."""
        started = time.perf_counter()
        current = self.policies.current()
        now = ledger.clock(self.r, namespace)
        ctx = AnalysisContext(
            redis=self.r, policy=current.policy, namespace=namespace, now=now, store=self.store
        )
        verdicts: Verdicts = {}
        for analyser in self.analysers:
            for event_id, reasons in analyser(ctx).items():
                verdicts.setdefault(event_id, []).extend(reasons)
        outcome = self.redecide(namespace, verdicts, actor="analysis")
        self.r.set(ledger.analysed_key(namespace), repr(now))
        metrics.observe(self.r, namespace, "analysis", time.perf_counter() - started)
        return outcome

    def redecide(self, namespace: str, verdicts: Verdicts, actor: str) -> Redecision:
        """Decide events again with new reasons added to their current ones.

        Pending items may go to review or be rejected; items in review may be rejected
        (never cleared: a moderator decides those); admitted items whose new decision
        would not admit them are quarantined in the store. Final outcomes stay final.
        """
        outcome = Redecision()
        ids = sorted(verdicts)
        for start in range(0, len(ids), REDECIDE_CHUNK):
            self._redecide(namespace, ids[start : start + REDECIDE_CHUNK], verdicts, actor, outcome)
        return outcome

    def _redecide(
        self,
        namespace: str,
        ids: list[str],
        verdicts: Verdicts,
        actor: str,
        outcome: Redecision,
    ) -> None:
        current = self.policies.current()
        policy = current.policy
        with self.r.lock(ledger.lock_key(namespace), timeout=STATUS_LOCK_TIMEOUT_S):
            # Analysis finds most events again with the reasons they already carry, so
            # records are read as plain JSON and only those whose reasons change are
            # validated into models (validating them all was a large share of worker
            # time; docs/benchmarks.md, "Pipeline throughput").
            raws = ledger.load_raw(self.r, namespace, ids)
            now = datetime.now(UTC)
            pipe = self.r.pipeline(transaction=True)
            quarantine: list[str] = []
            flagged: Counter[str] = Counter()  # reason codes of events newly flagged
            for event_id, raw in zip(ids, raws, strict=True):
                if raw is None or raw.status not in ("pending", "review", "admitted"):
                    continue
                merged = _merge(raw.trail[-1]["reasons"], verdicts[event_id])
                if merged is None:
                    continue
                record = raw.validated()
                last = record.decision
                decision = decide(event_id, merged, policy.thresholds, current.version, now)
                new: Status = _redecided_status(last.status, decision.status)
                if new == last.status and decision.risk == last.risk:
                    continue
                decision = decision.model_copy(update={"status": new, "decided_by": actor})
                pipe.set(
                    ledger.record_key(namespace, event_id),
                    raw.then(decision.model_dump(mode="json")).to_json(),
                    ex=None if new in WAITING else int(policy.outcome_ttl_s),
                )
                if new == "review":  # (re-)indexed: its risk and reasons may have changed
                    queue.index(
                        pipe,
                        namespace,
                        event_id,
                        ledger.Record(record.event, (*record.trail, decision)),
                    )
                if new == last.status:
                    continue
                if last.status == "review":
                    queue.unindex_records(pipe, namespace, [record])
                if last.status == "pending":
                    pipe.zrem(ledger.pending_key(namespace), event_id)
                    pipe.zrem(ledger.releasing_key(namespace), event_id)
                elif last.status == "review":
                    pipe.zrem(ledger.review_key(namespace), event_id)
                if new == "review":
                    pipe.zadd(
                        ledger.review_key(namespace),
                        {event_id: record.event.received_at.timestamp()},
                    )
                elif new == "quarantined":
                    quarantine.append(event_id)
                pipe.hincrby(ledger.stats_key(namespace), last.status, -1)
                pipe.hincrby(ledger.stats_key(namespace), new, 1)
                if new in ("review", "rejected", "quarantined") and last.status != "review":
                    flagged.update({reason.code for reason in decision.reasons})
                key = (last.status, new)
                outcome.changed[key] = outcome.changed.get(key, 0) + 1
            if quarantine:
                # The store first: a crash here leaves the records saying admitted and
                # the next analysis run quarantines them again (idempotent).
                self.store.quarantine(
                    quarantine, reason="found by analysis after admission", actor=actor
                )
                outcome.quarantined += len(quarantine)
            metrics.count_reasons(pipe, namespace, flagged)
            pipe.execute()


def _merge(last: Sequence[Mapping[str, Any]], found: Sequence[Reason]) -> list[Reason] | None:
    """The last decision's reasons (JSON form) with `found` added (a code found again
    takes the new score); None when nothing changes."""
    reasons = {r["code"]: Reason(r["code"], r["detail"], r["score"]) for r in last}
    changed = False
    for reason in found:
        old = reasons.get(reason.code)
        if old is None or old.score != reason.score:
            reasons[reason.code] = reason
            changed = True
    return list(reasons.values()) if changed else None


def _redecided_status(old: Status, new: Status) -> Status:
    if old == "pending":
        return new
    if old == "review":
        return "rejected" if new == "rejected" else "review"
    # admitted
    return "admitted" if new == "pending" else "quarantined"


def _dead(entry_id: bytes, raw: bytes, what: str, error: str) -> dict[str, Any]:
    return {
        "entry_id": entry_id.decode(),
        "what": what,
        "error": error[:_RAW_PREVIEW_BYTES],
        "raw": raw[:_RAW_PREVIEW_BYTES].decode("utf-8", "replace"),
        "at": datetime.now(UTC).isoformat(),
    }
