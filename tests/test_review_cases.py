"""Review cases: events gathered into cases as they enter review, one action decides a
case (one audit entry), undo takes the whole case back, split, triage order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from feedbackguard import audit, keys
from feedbackguard.events import FeedbackEvent
from feedbackguard.graph.analysis import analyse
from feedbackguard.graph.window import EventWindow
from feedbackguard.pipeline import ledger
from feedbackguard.pipeline.engine import Pipeline
from feedbackguard.reasons import Reason
from feedbackguard.review import cases, casework
from feedbackguard.store import Store
from tests.review_helpers import NS, put_in_review, send_to_review

MakeEvent = Callable[..., FeedbackEvent]
LOCKSTEP = "coordination.lockstep"
KEEP_S = 300.0


def group_reason(group: str, score: float = 0.6) -> Reason:
    return Reason(LOCKSTEP, "accounts acted in lockstep", score, group)


def statuses(r: redis.Redis[bytes], events: list[FeedbackEvent]) -> set[str]:
    records = ledger.load(r, NS, [e.event_id for e in events])
    return {rec.decision.status for rec in records if rec is not None}


def only_case(r: redis.Redis[bytes]) -> cases.Case:
    found = cases.page(r, NS, cases.Filters()).ids
    assert len(found) == 1, found
    case = cases.get(r, NS, found[0])
    assert case is not None
    return case


def test_an_accounts_waiting_events_are_one_case(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    mine = [make_event(at=float(i), account_id="mallory") for i in range(5)]
    put_in_review(r, mine[:3])
    put_in_review(r, mine[3:])  # later arrivals join the open case
    case = only_case(r)
    assert (case.kind, case.label, case.events, case.accounts) == ("a", "mallory", 5, 1)
    assert cases.members(r, NS, case.case_id) == [e.event_id for e in mine]
    assert cases.check(r, NS) == []


def test_a_groups_events_are_one_case_across_accounts(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    swarm = [make_event(at=float(i), account_id=f"swarm-{i % 40}") for i in range(200)]
    put_in_review(r, swarm, [group_reason("coordination.lockstep:abc")])
    case = only_case(r)
    assert (case.kind, case.events, case.accounts) == ("g", 200, 40)
    assert case.codes == {LOCKSTEP: 200}
    assert case.top_detail == "accounts acted in lockstep"


def test_an_items_contested_feedback_is_one_case(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    contested = [make_event(account_id=f"u{i}", item_id="post-9") for i in range(3)]
    put_in_review(r, contested, [Reason("consistency.consensus", "against 12 others", 0.6)])
    other = make_event(account_id="u0", item_id="post-1")
    put_in_review(r, [other])
    found = cases.load(r, NS, cases.page(r, NS, cases.Filters()).ids)
    assert sorted((c.kind, c.label, c.events) for c in found if c) == [
        ("a", "u0", 1),
        ("i", "post-9", 3),
    ]


def test_an_event_found_in_a_group_later_moves_to_the_groups_case(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    events = [make_event(at=float(i), account_id=f"s{i}") for i in range(3)]
    send_to_review(pipeline, r, events, code="outlier")
    assert len(cases.page(r, NS, cases.Filters()).ids) == 3  # three account cases
    pipeline.redecide(
        NS, {e.event_id: [group_reason("coordination.lockstep:g1")] for e in events}, "analysis"
    )
    case = only_case(r)
    assert (case.kind, case.label, case.events) == ("g", "coordination.lockstep:g1", 3)
    assert cases.check(r, NS) == []


def test_one_action_rejects_a_whole_case_with_one_audit_entry(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    swarm = [make_event(at=float(i), account_id=f"swarm-{i % 20}") for i in range(200)]
    put_in_review(r, swarm, [group_reason("g:1")])
    case = only_case(r)
    done = casework.decide(
        pipeline, NS, case.case_id, "ana", "reject", keep_s=KEEP_S, note="brigade"
    )
    assert len(done.rejected) == 200
    assert done.approved == []
    assert statuses(r, swarm) == {"rejected"}
    entries = [e for e in audit.entries(r, 1000) if e["action"].startswith("review.")]
    assert len(entries) == 1
    assert entries[0]["action"] == "review.case.reject"
    assert sorted(entries[0]["rejected"]) == sorted(e.event_id for e in swarm)
    assert entries[0]["note"] == "brigade"
    assert cases.page(r, NS, cases.Filters()).ids == []
    assert store.count() == 0
    assert cases.check(r, NS) == []


def test_approving_a_case_admits_it_and_undo_takes_the_whole_case_back(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    group = [make_event(at=float(i), account_id=f"fan-{i}") for i in range(30)]
    put_in_review(r, group, [group_reason("g:2")])
    case = only_case(r)
    done = casework.decide(
        pipeline,
        NS,
        case.case_id,
        "ana",
        "approve",
        keep_s=KEEP_S,
        seen_version=case.version,
        note="a real fan club",
    )
    assert statuses(r, group) == {"admitted"}
    assert store.count() == 30
    record = ledger.load(r, NS, [group[0].event_id])[0]
    assert record is not None
    assert record.decision.note == "a real fan club"

    undone = casework.undo(pipeline, NS, done.action_id, "ana", window_s=KEEP_S)
    assert sorted(undone.undone) == sorted(e.event_id for e in group)
    assert statuses(r, group) == {"review"}
    assert only_case(r).case_id == case.case_id  # the same case, whole again
    assert only_case(r).events == 30
    assert list(store.iter_rows()) == []  # the undone approval is quarantined
    assert cases.check(r, NS) == []
    with pytest.raises(casework.CaseError):
        casework.undo(pipeline, NS, done.action_id, "ana", window_s=KEEP_S)


def test_undo_is_refused_to_another_moderator(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event()])
    done = casework.decide(pipeline, NS, only_case(r).case_id, "ana", "reject", keep_s=KEEP_S)
    with pytest.raises(casework.CaseError):
        casework.undo(pipeline, NS, done.action_id, "bo", window_s=KEEP_S)


def test_a_split_approves_some_members_and_rejects_the_others(
    r: redis.Redis[bytes], pipeline: Pipeline, store: Store, make_event: MakeEvent
) -> None:
    bad = [make_event(at=float(i), account_id=f"bot-{i}") for i in range(6)]
    good = [make_event(at=10.0 + i, account_id=f"fan-{i}") for i in range(2)]
    put_in_review(r, [*bad, *good], [group_reason("g:3")])
    case = only_case(r)
    done = casework.decide(
        pipeline,
        NS,
        case.case_id,
        "ana",
        "split",
        keep_s=KEEP_S,
        approve_accounts={e.account_id for e in good},
        seen_version=case.version,
    )
    assert sorted(done.approved) == sorted(e.event_id for e in good)
    assert statuses(r, bad) == {"rejected"}
    assert statuses(r, good) == {"admitted"}
    assert {item.event.event_id for item in store.iter_rows()} == {e.event_id for e in good}
    entry = audit.entries(r, 1)[0]
    assert entry["action"] == "review.case.split"
    assert len(entry["approved"]) == 2
    assert len(entry["rejected"]) == 6


def test_an_approval_is_refused_when_events_joined_since_the_case_was_shown(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="eve")])
    seen = only_case(r)
    late = make_event(account_id="eve")
    put_in_review(r, [late])
    with pytest.raises(casework.CaseChanged):
        casework.decide(
            pipeline, NS, seen.case_id, "ana", "approve", keep_s=KEEP_S, seen_version=seen.version
        )
    assert statuses(r, [late]) == {"review"}


def test_a_case_claimed_by_another_moderator_cannot_be_decided(
    r: redis.Redis[bytes], pipeline: Pipeline, make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event()])
    claimed = cases.claim(r, NS, "bo", lease_s=60)
    assert claimed is not None
    with pytest.raises(casework.CaseBusy):
        casework.decide(pipeline, NS, claimed, "ana", "reject", keep_s=KEEP_S)


def test_claims_give_each_moderator_another_case_in_triage_order(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="small")], risk=0.6)
    put_in_review(r, [make_event(account_id="big") for _ in range(3)], risk=0.6)
    first = cases.claim(r, NS, "ana", lease_s=60)
    second = cases.claim(r, NS, "bo", lease_s=60)
    labels = [c.label for c in cases.load(r, NS, [first or "", second or ""]) if c]
    assert labels == ["big", "small"]
    assert cases.claim(r, NS, "cy", lease_s=60) is None


def test_cases_are_ordered_by_risk_times_events_while_no_event_has_harm(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="one-sure")], risk=0.85)
    put_in_review(r, [make_event(account_id="many-unsure") for _ in range(3)], risk=0.55)
    found = cases.page(r, NS, cases.Filters())
    assert found.order == "risk"
    assert [c.label for c in cases.load(r, NS, found.ids) if c] == ["many-unsure", "one-sure"]


def test_cases_are_ordered_by_expected_harm_once_harm_is_known(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="many-harmless") for _ in range(5)], risk=0.8)
    put_in_review(r, [make_event(account_id="one-harmful")], risk=0.6, harm=0.9)
    put_in_review(r, [make_event(account_id="two-mild") for _ in range(2)], risk=0.6, harm=0.2)
    found = cases.page(r, NS, cases.Filters())
    assert found.order == "harm"
    loaded = [c for c in cases.load(r, NS, found.ids) if c]
    assert [c.label for c in loaded] == ["one-harmful", "two-mild", "many-harmless"]
    assert loaded[0].expected_harm == pytest.approx(0.9 * 0.6)


def test_filters_narrow_cases_by_kind_reason_account_and_risk(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="a1")], [Reason("outlier", "odd", 0.6)], risk=0.6)
    put_in_review(
        r, [make_event(account_id=f"g{i}") for i in range(3)], [group_reason("g:9")], risk=0.8
    )

    def labels(filters: cases.Filters) -> list[str]:
        return [c.label for c in cases.load(r, NS, cases.page(r, NS, filters).ids) if c]

    assert labels(cases.Filters(kind="g")) == ["g:9"]
    assert labels(cases.Filters(reason="outlier")) == ["a1"]
    assert labels(cases.Filters(account="g1")) == ["g:9"]
    assert labels(cases.Filters(risk_min=0.7)) == ["g:9"]


def test_pages_of_cases_follow_on_without_gaps_or_repeats(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    for i in range(23):
        put_in_review(r, [make_event(account_id=f"acct-{i:02d}")], risk=0.6)  # all tied
    seen: list[str] = []
    cursor = None
    while True:
        found = cases.page(r, NS, cases.Filters(), cursor=cursor, limit=5)
        seen.extend(found.ids)
        if found.cursor is None:
            break
        cursor = found.cursor
    assert len(seen) == 23 == len(set(seen))


def test_events_in_review_before_cases_existed_are_put_in_cases(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    events = [make_event(account_id="old-timer") for _ in range(3)]
    put_in_review(r, events)
    for key in r.scan_iter(match=keys.ns(NS, "case", "*")):
        r.delete(key)  # as before an upgrade: the review set, no cases
    assert cases.check(r, NS) != []
    assert cases.catch_up(r, NS) == 3
    assert cases.check(r, NS) == []
    assert only_case(r).events == 3


def _swarm(bots: int, honest: int = 2000) -> list[FeedbackEvent]:
    """Honest votes over a month, and `bots` young accounts reporting the same 12 posts
    within two hours on day 10 (bot0 first)."""
    rng = np.random.default_rng(3)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    out = [
        FeedbackEvent(
            kind="vote",
            account_id=f"user{a}",
            account_created_at=t0 - timedelta(days=200 + a),
            item_id=f"post{int(rng.integers(0, 400))}",
            value=int(rng.integers(0, 3)),
            ip=f"10.{a % 200}.{a}.1",
            received_at=t0 + timedelta(seconds=float(rng.uniform(0, 30 * 86400))),
            event_id=f"h{k}",
        )
        for k, a in enumerate(int(x) for x in rng.integers(0, 250, honest))
    ]
    for m in range(bots):
        for p in range(12):
            offset = 0.0 if m == 0 else float(rng.uniform(60, 7200))
            out.append(
                FeedbackEvent(
                    kind="report",
                    account_id=f"bot{m}",
                    account_created_at=t0 + timedelta(days=9),
                    item_id=f"target{p}",
                    value="abuse",
                    ip=f"203.0.113.{m % 3}",
                    received_at=t0 + timedelta(days=10, seconds=offset + p),
                )
            )
    return out


def test_a_groups_reasons_carry_one_group_id_that_stays_as_the_group_grows() -> None:
    def groups(bots: int) -> set[str]:
        result = analyse(EventWindow.from_events(_swarm(bots)))
        return {
            reason.group
            for m in range(bots)
            for reason in result.accounts[f"bot{m}"].reasons
            if reason.code == LOCKSTEP
        }

    first, grown = groups(20), groups(30)
    assert len(first) == 1
    assert first == grown
    assert next(iter(first)).startswith(LOCKSTEP + ":")


def test_a_moderator_gets_back_their_own_claimed_case_and_can_pass_over_it(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    put_in_review(r, [make_event(account_id="big") for _ in range(3)])
    put_in_review(r, [make_event(account_id="small")])
    first = cases.claim(r, NS, "ana", lease_s=60)
    assert cases.claim(r, NS, "ana", lease_s=60) == first
    second = cases.claim(r, NS, "ana", lease_s=60, skip=first or "")
    assert second not in (None, first)
    assert cases.claim(r, NS, "bo", lease_s=60) is None  # both are ana's
