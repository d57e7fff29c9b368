"""The per-batch path of every feedback event, and the release of ended probations.

ingest:  inbox batch -> parse and dedupe (event_id) -> checks and decide -> one MULTI
         writing the new records' states (`state.apply`), the counters, the event
         clock and the XACK. Either all of a batch's outcomes are written and
         acknowledged, or none are and the batch is delivered again; never by two
         readers (`Pipeline.ingest_batch`).
release: pending items whose probation ended (event time) -> admitted (retraining
         store, then records). The store write is idempotent on event_id, so a
         release that crashes half way is simply done again.
analyse: every analyser over the namespace's window -> events re-decided; review cases
         the team cannot reach in time get the safe default (`review.budget`).
"""

from __future__ import annotations

import logging
import time
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
from feedbackguard.decisions import Status, json_time
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger, state
from feedbackguard.pipeline.decide import decide, mistake, model_support, still_harmful
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore, PolicyVersion
from feedbackguard.review import budget
from feedbackguard.store import Store

log = logging.getLogger(__name__)

# Events re-decided per hold of the status lock.
REDECIDE_CHUNK = 2000
# Held events moved back to the inbox per script call (see requeue_held).
REQUEUE_CHUNK = 500
# Dead letters kept per namespace (the newest); each holds the raw entry and the error.
DEAD_LETTER_MAXLEN = 10_000
_RAW_PREVIEW_BYTES = 4096


def requeue_held(r: redis.Redis[bytes], namespace: str) -> int:
    """Send every held event back to the inbox, to be decided as new (an operator
    knows they are); how many were moved. Each chunk moves in one script call."""
    script_keys = [keys.held(namespace), keys.inbox(namespace), keys.stats(namespace)]
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

    def __str__(self) -> str:
        """One line for the worker's log: what was decided, by status, and set aside."""
        line = f"batch of {self.entries}: decided {self.decided}"
        if self.statuses:
            line += " (" + ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) + ")"
        aside = {"duplicates": self.duplicates, "held": self.held, "dead": self.dead}
        return line + "".join(f", {n} {what}" for what, n in aside.items() if n)


@dataclass
class Redecision:
    """What re-judging events found by analysis did: status changes by (old, new)."""

    changed: dict[tuple[str, str], int] = field(default_factory=dict)
    quarantined: int = 0

    def __str__(self) -> str:
        """One line for the worker's log: how many moved, and from where to where."""
        moves = ", ".join(f"{n} {a}->{b}" for (a, b), n in sorted(self.changed.items()))
        return f"{sum(self.changed.values())} re-decided" + (f" ({moves})" if moves else "")


@dataclass
class _Batch:
    """An inbox batch once parsed and deduplicated: the new events (with their raw
    JSON) to decide, and what is set aside."""

    events: list[FeedbackEvent] = field(default_factory=list)
    raws: list[bytes] = field(default_factory=list)
    held: list[bytes] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0


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
        """Read, check, decide and acknowledge one batch of the namespace's inbox.

        A worker stalled longer than `claim_idle_ms` has its batch reclaimed by another
        reader while it still works on it, and each reclaim moves the reclaim counter
        (`inbox.reclaims`). The batch's MULTI watches that counter while it is where
        it was before the batch was read: then no other reader holds any of its
        entries. Once it has moved, another reader may be deciding some of them, and
        the MULTI watches the records of the batch's new events instead, so that of
        two readers the one that writes second fails, and finds those events decided
        when it parses the batch again. (Watching the records is only the fallback:
        WATCH costs Redis time quadratic in the number of keys.)
        """
        inbox.ensure_group(self.r, namespace)
        reclaims = inbox.reclaims(self.r, namespace)
        entries = inbox.read_batch(
            self.r, namespace, consumer, self.batch_size, block_ms, self.claim_idle_ms
        )
        if not entries:
            return BatchOutcome()
        while True:
            try:
                return self._ingest(namespace, entries, reclaims)
            except redis.WatchError:
                log.info("%s: inbox entries were reclaimed during a batch", namespace)

    def _ingest(
        self, namespace: str, entries: Sequence[inbox.Entry], reclaims: int
    ) -> BatchOutcome:
        outcome = BatchOutcome(entries=len(entries))
        started = time.perf_counter()
        current = self.policies.current()
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(keys.reclaims(namespace))
            shared = inbox.reclaims(self.r, namespace) != reclaims
            if shared:
                pipe.unwatch()
            batch = self._parse(namespace, entries, current.policy, pipe if shared else None)
            changes = self._decide(namespace, batch, current)
            pipe.multi()
            moves = state.apply(pipe, namespace, changes, ttl_s=current.policy.outcome_ttl_s)
            for (_, status), count in moves.items():
                outcome.statuses[status] = outcome.statuses.get(status, 0) + count
            outcome.decided = len(changes)
            outcome.duplicates = batch.duplicates
            outcome.held = len(batch.held)
            outcome.dead = len(batch.dead)
            self._write_rest(pipe, namespace, batch, outcome)
            metrics.observe(pipe, namespace, "batch", time.perf_counter() - started)
            ids = [entry.id for entry in entries]
            pipe.xack(keys.inbox(namespace), keys.INBOX_GROUP, *ids)
            pipe.xdel(keys.inbox(namespace), *ids)
            pipe.execute()
        return outcome

    def _parse(
        self,
        namespace: str,
        entries: Sequence[inbox.Entry],
        policy: Policy,
        watch: redis.client.Pipeline[bytes] | None,
    ) -> _Batch:
        """Step 1: validate each entry and keep the events not decided before (their
        records WATCHed on `watch`, when given). An unsure copy (see `inbox`) whose
        first copy's record may have expired cannot be proven new: it is held for an
        operator instead of being decided twice."""
        batch = _Batch()
        events: list[FeedbackEvent] = []
        raws: list[bytes] = []
        unsure: list[bool] = []
        seen: set[str] = set()
        for entry in entries:
            try:
                event = FeedbackEvent.from_json(entry.raw)
            except pydantic.ValidationError as exc:
                batch.dead.append(_dead(entry.id, entry.raw, "invalid event", str(exc)))
                continue
            if event.event_id in seen:
                batch.duplicates += 1
                continue
            seen.add(event.event_id)
            events.append(event)
            raws.append(entry.raw)
            unsure.append(entry.unsure)
        fresh = ledger.missing(self.r, namespace, [e.event_id for e in events], watch)
        batch.duplicates += fresh.count(False)
        late_before = time.time() - policy.outcome_ttl_s + policy.clock_skew_s
        for event, raw, new, maybe_copy in zip(events, raws, fresh, unsure, strict=True):
            if not new:
                continue
            if maybe_copy and event.received_at.timestamp() <= late_before:
                batch.held.append(raw)
            else:
                batch.events.append(event)
                batch.raws.append(raw)
        return batch

    def _decide(self, namespace: str, batch: _Batch, current: PolicyVersion) -> list[state.Change]:
        """Step 2: every check over the batch, then one decision per event. An event a
        check crashed on goes to the dead letters."""
        ctx = CheckContext(redis=self.r, policy=current.policy, namespace=namespace)
        findings, poisoned = self._run_checks(batch.events, ctx)
        now = datetime.now(UTC)
        for index in sorted(poisoned):
            batch.dead.append(_dead(b"", batch.raws[index], "check crashed", poisoned[index]))
        return first_decisions(batch.events, batch.raws, findings, poisoned, current, now)

    def _write_rest(
        self,
        pipe: redis.client.Pipeline[bytes],
        namespace: str,
        batch: _Batch,
        outcome: BatchOutcome,
    ) -> None:
        """Step 3 (with `state.apply`): what is not a status change: the batch
        counters, held copies, dead letters and the event clock."""
        stats = keys.stats(namespace)
        if outcome.decided:
            pipe.hincrby(stats, "decided", outcome.decided)
        if batch.duplicates:
            pipe.hincrby(stats, "duplicates", batch.duplicates)
        if batch.held:
            pipe.rpush(keys.held(namespace), *batch.held)
            pipe.hincrby(stats, "held", len(batch.held))
        if batch.dead:
            pipe.lpush(keys.dead_letters(namespace), *(orjson.dumps(d) for d in batch.dead))
            pipe.ltrim(keys.dead_letters(namespace), 0, DEAD_LETTER_MAXLEN - 1)
            pipe.hincrby(stats, "dead", len(batch.dead))
        if batch.events:
            latest = max(e.received_at.timestamp() for e in batch.events)
            ledger.advance_clock(pipe, namespace, latest)

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
        with state.locked(self.r, namespace):
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
        # A lone mistake whose harm no independent support outweighed during its
        # probation is rejected instead (`decide.still_harmful`).
        decided_at = json_time(datetime.now(UTC))
        changes: list[state.Change] = []
        for record in ledger.load_raw(self.r, namespace, ids):
            if record is None or record.status != "pending":
                continue  # expired, or re-decided by analysis before the claim
            last = record.trail[-1]
            final = {**last, "status": "admitted", "decided_at": decided_at}
            if still_harmful(float(last["harm"]), current.policy):
                final["status"] = "rejected"
                final["reasons"] = [*last["reasons"], mistake(last)]
            changes.append(state.change(record.then(final)))
        pipe = self.r.pipeline(transaction=True)
        state.apply(pipe, namespace, changes, ttl_s=current.policy.outcome_ttl_s, store=self.store)
        pipe.zrem(keys.releasing(namespace), *ids)
        pipe.execute()
        return len(changes)

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
            step = time.perf_counter()
            found = analyser(ctx)
            took = time.perf_counter() - step
            metrics.observe(self.r, namespace, f"analysis:{analyser.name}", took)
            log.info(
                "%s: analysis %s found %d events in %.1f s",
                namespace,
                analyser.name,
                len(found),
                took,
                extra={"namespace": namespace},
            )
            for event_id, reasons in found.items():
                verdicts.setdefault(event_id, []).extend(reasons)
        outcome = self.redecide(namespace, verdicts, actor="analysis")
        budget.enforce(self, namespace, now)
        self.r.set(keys.analysed(namespace), repr(now))
        took = time.perf_counter() - started
        metrics.observe(self.r, namespace, "analysis", took)
        log.info(
            "%s: analysis done in %.1f s, %s",
            namespace,
            took,
            outcome,
            extra={"namespace": namespace},
        )
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
        with state.locked(self.r, namespace):
            # Analysis finds most events again with the reasons they already carry, so
            # records are read as plain JSON and only those whose reasons change are
            # validated into models (validating them all was a large share of worker
            # time; docs/benchmarks.md, "Pipeline throughput").
            raws = ledger.load_raw(self.r, namespace, ids)
            now = datetime.now(UTC)
            changes: list[state.Change] = []
            for event_id, raw in zip(ids, raws, strict=True):
                if raw is None or raw.status not in ("pending", "review", "admitted"):
                    continue
                merged = _merge(raw.trail[-1]["reasons"], verdicts[event_id])
                if merged is None:
                    continue
                record = raw.validated()
                last = record.decision
                decision = decide(record.event, merged, policy, current.version, now)
                new: Status = _redecided_status(
                    last.status, decision.status, still_harmful(decision.harm, policy)
                )
                if (new, decision.risk, decision.harm) == (last.status, last.risk, last.harm):
                    continue
                decision = decision.model_copy(update={"status": new, "decided_by": actor})
                changes.append(
                    state.change(
                        raw.then(decision.model_dump(mode="json")),
                        account_id=record.event.account_id,
                        received_at=record.event.received_at.timestamp(),
                    )
                )
            pipe = self.r.pipeline(transaction=True)
            moves = state.apply(
                pipe, namespace, changes, ttl_s=policy.outcome_ttl_s, store=self.store, actor=actor
            )
            pipe.execute()
        for (before, after), count in moves.items():
            if before != after and before is not None:
                key = (before, after)
                outcome.changed[key] = outcome.changed.get(key, 0) + count
        outcome.quarantined += moves[("admitted", "quarantined")]


def first_decisions(
    events: Sequence[FeedbackEvent],
    raws: Sequence[bytes],
    findings: Findings,
    skip: Mapping[int, str],
    current: PolicyVersion,
    now: datetime | None = None,
) -> list[state.Change]:
    """The first decision of each new event (those at the indices in `skip` left out),
    decided at `now` (default: the wall clock), as the state changes that write them.

    A decision is a function of the event's reasons, kind and model support (and of
    the batch's policy and time), so `decide` and `state.change` run once per distinct
    set of these in the batch; the other events of that set take a copy with their
    own event id, record and times. A `Decision` model built, dumped and turned into a
    change per event was 28 us of worker CPU per event, against 11 us this way
    (`benchmarks/ingest_paths.py`, "decisions"). Reasons with a zero score are decided
    one by one (0.0 == -0.0, but their JSON differs)."""
    now = now or datetime.now(UTC)
    probation = current.policy.probation_s
    decided: dict[tuple[Any, ...], tuple[dict[str, Any], state.Change]] = {}
    changes: list[state.Change] = []
    for index, (event, raw) in enumerate(zip(events, raws, strict=True)):
        if index in skip:
            continue
        reasons = findings.get(index, [])
        received = event.received_at.timestamp()
        # Everything `decide` reads of the event besides its id (its harm depends on
        # the kind and on what the model said of it).
        key = (tuple(reasons), event.kind, event.model_output is None, model_support(event))
        found = decided.get(key)
        if found is None:
            decision = decide(event, reasons, current.policy, current.version, now)
            dumped = decision.model_dump(mode="json")
            change = state.change(
                ledger.RawRecord(raw, [dumped]),
                account_id=event.account_id,
                received_at=received,
                due=received + probation,
            )
            if change.admission is None and all(reason.score for reason in reasons):
                decided[key] = (dumped, change)
        else:
            # Every other field of a first decision's change comes from the decision.
            dumped = {**found[0], "event_id": event.event_id}
            change = found[1]._replace(
                event_id=event.event_id,
                record=ledger.encode_record(raw, [dumped]),
                account_id=event.account_id,
                received_at=received,
                due=received + probation,
            )
        changes.append(change)
    return changes


def _merge(last: Sequence[Mapping[str, Any]], found: Sequence[Reason]) -> list[Reason] | None:
    """The last decision's reasons (JSON form) with `found` added (a code found again
    takes the new score; a score of 0 withdraws the code: the analysis no longer finds
    it, e.g. a consensus that stopped disagreeing once a brigade lost its weight);
    None when nothing changes."""
    reasons = {
        r["code"]: Reason(r["code"], r["detail"], r["score"], r.get("group", "")) for r in last
    }
    changed = False
    for reason in found:
        old = reasons.get(reason.code)
        if reason.score == 0.0:
            if old is not None:
                del reasons[reason.code]
                changed = True
        elif old is None or old.score != reason.score:
            reasons[reason.code] = reason
            changed = True
    return list(reasons.values()) if changed else None


def _redecided_status(old: Status, new: Status, harmful: bool) -> Status:
    """`harmful`: the new decision's harm would keep it out of training (a lone
    mistake `decide` leaves pending until its probation ends)."""
    if old == "pending":
        return new
    if old == "review":
        return "rejected" if new == "rejected" else "review"
    # admitted: its probation is over, so a lone mistake found now is quarantined too
    return "admitted" if new == "pending" and not harmful else "quarantined"


def _dead(entry_id: bytes, raw: bytes, what: str, error: str) -> dict[str, Any]:
    return {
        "entry_id": entry_id.decode(),
        "what": what,
        "error": error[:_RAW_PREVIEW_BYTES],
        "raw": raw[:_RAW_PREVIEW_BYTES].decode("utf-8", "replace"),
        "at": datetime.now(UTC).isoformat(),
    }
