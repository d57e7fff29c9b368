"""Inbox entries reclaimed from another reader (docs/architecture.md, invariant 1),
on the embedded Redis 6.2 as on Redis 7: a batch reclaimed from a reader that was
only stalled is decided once, whichever of the two readers writes first, and an
entry deleted while pending neither reaches ingest nor stays pending."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import redis

from feedbackguard import inbox_writer, keys
from feedbackguard.checks.base import CheckContext, Findings
from feedbackguard.events import FeedbackEvent
from feedbackguard.pipeline import inbox, ledger
from feedbackguard.pipeline.engine import BatchOutcome, Pipeline

MakeEvent = Callable[..., FeedbackEvent]
NS = "default"


def push(r: redis.Redis[bytes], events: Sequence[FeedbackEvent]) -> None:
    pipe = r.pipeline(transaction=False)
    inbox_writer.append(pipe, events)
    pipe.execute()


def drain(pipeline: Pipeline, consumer: str) -> None:
    while pipeline.ingest_batch(NS, consumer).entries:
        pass


class Stall:
    """A check that, the first time it runs, calls `meanwhile`: what other readers
    do while a worker is stalled in the middle of a batch."""

    name = "stall"

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        self.meanwhile = meanwhile
        self.stalled = False

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        if not self.stalled:
            self.stalled = True
            self.meanwhile()
        return {}


def assert_decided_once(r: redis.Redis[bytes], n: int) -> None:
    stats = ledger.stats(r, NS)
    assert (stats["decided"], stats["pending"]) == (n, n)
    assert r.zcard(keys.pending(NS)) == n
    assert inbox.backlog(r, NS) == 0


def test_a_batch_reclaimed_and_decided_while_its_reader_stalls_is_not_decided_again(
    r: redis.Redis[bytes], make_pipeline: Callable[..., Pipeline], make_event: MakeEvent
) -> None:
    push(r, [make_event(at=i) for i in range(50)])
    reclaimer = make_pipeline(claim_idle_ms=0)
    stalled = make_pipeline(checks=[Stall(lambda: drain(reclaimer, "reclaimer"))])
    outcome = stalled.ingest_batch(NS, "stalled")
    assert (outcome.decided, outcome.duplicates) == (0, 50)
    assert_decided_once(r, 50)


def test_a_batch_its_stalled_reader_decides_first_is_not_decided_again_by_its_reclaimer(
    r: redis.Redis[bytes], make_pipeline: Callable[..., Pipeline], make_event: MakeEvent
) -> None:
    push(r, [make_event(at=i) for i in range(50)])
    reached, go = threading.Event(), threading.Event()
    outcomes: list[BatchOutcome] = []

    def hold() -> None:
        reached.set()
        go.wait()

    stalled = make_pipeline(checks=[Stall(hold)])
    reader = threading.Thread(target=lambda: outcomes.append(stalled.ingest_batch(NS, "stalled")))
    reader.start()
    reached.wait()

    def let_it_finish() -> None:  # the stalled reader writes first
        go.set()
        reader.join()

    reclaimer = make_pipeline(claim_idle_ms=0, checks=[Stall(let_it_finish)])
    outcome = reclaimer.ingest_batch(NS, "reclaimer")
    assert (outcomes[0].decided, outcome.decided, outcome.duplicates) == (50, 0, 50)
    assert_decided_once(r, 50)


def test_an_entry_deleted_while_pending_is_acknowledged_and_never_ingested(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    push(r, [make_event() for _ in range(3)])
    inbox.ensure_group(r, NS)
    taken = inbox.read_batch(r, NS, "died", count=3, block_ms=None, claim_idle_ms=60_000)
    r.xdel(keys.inbox(NS), taken[1].id)
    reclaimed = inbox.read_batch(r, NS, "next", count=3, block_ms=None, claim_idle_ms=0)
    assert [entry.id for entry in reclaimed] == [taken[0].id, taken[2].id]
    assert r.xpending(keys.inbox(NS), keys.INBOX_GROUP)["pending"] == 2
    pipeline.claim_idle_ms = 0
    drain(pipeline, "next")
    assert ledger.stats(r, NS)["decided"] == 2
    assert inbox.backlog(r, NS) == 0
