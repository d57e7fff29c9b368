"""The rate-limit check (GCRA on event time) against a real Redis."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedbackguard.checks.base import CheckContext, Findings
from feedbackguard.checks.ratelimit import TTL_GRACE_S, RateLimitCheck, ip_scopes
from feedbackguard.events import FeedbackEvent
from feedbackguard.policy import Policy, RateLimit, RateLimits, Scope

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NS = "rl"
HOUR = 3600.0
DAY = 86400.0

MakeEvent = Callable[..., FeedbackEvent]


def policy(*limits: RateLimit, new_account_age_s: float = 7 * DAY) -> Policy:
    return Policy(ratelimit=RateLimits(new_account_age_s=new_account_age_s, limits=limits))


def run(
    r: redis.Redis[bytes], pol: Policy, events: Sequence[FeedbackEvent], namespace: str = NS
) -> Findings:
    return RateLimitCheck()(events, CheckContext(redis=r, policy=pol, namespace=namespace))


def limited(findings: Findings) -> list[int]:
    return sorted(findings)


def event(at: float = 0.0, **fields: object) -> FeedbackEvent:
    values: dict[str, object] = {
        "kind": "label",
        "account_id": "alice",
        "item_id": "item-1",
        "value": "spam",
        "received_at": T0 + timedelta(seconds=at),
    }
    values.update(fields)
    return FeedbackEvent.model_validate(values)


ACCOUNT_3_PER_HOUR = policy(RateLimit(scope="account", limit=3, window_s=HOUR))


def test_allows_exactly_limit_at_once_then_rejects(r: redis.Redis[bytes]) -> None:
    findings = run(r, ACCOUNT_3_PER_HOUR, [event() for _ in range(5)])
    assert limited(findings) == [3, 4]


def test_reason_names_scope_and_limit(r: redis.Redis[bytes]) -> None:
    findings = run(r, ACCOUNT_3_PER_HOUR, [event() for _ in range(4)])
    [reason] = findings[3]
    assert reason.code == "rate_limited.account"
    assert reason.detail == "account: 3 per 3600s"
    assert reason.score == 1.0


def test_later_events_of_a_batch_see_the_earlier_ones_across_batches_too(
    r: redis.Redis[bytes],
) -> None:
    assert run(r, ACCOUNT_3_PER_HOUR, [event(), event()]) == {}
    assert limited(run(r, ACCOUNT_3_PER_HOUR, [event(), event()])) == [1]


def test_accounts_have_separate_budgets(r: redis.Redis[bytes]) -> None:
    events = [event(account_id=name) for name in ("a", "b", "c") for _ in range(3)]
    assert run(r, ACCOUNT_3_PER_HOUR, events) == {}


def test_budget_refills_with_event_time(r: redis.Redis[bytes]) -> None:
    assert len(run(r, ACCOUNT_3_PER_HOUR, [event(0) for _ in range(4)])) == 1
    # one event's worth of budget comes back every window / limit = 1200 s of event time
    assert limited(run(r, ACCOUNT_3_PER_HOUR, [event(1199)])) == [0]
    assert run(r, ACCOUNT_3_PER_HOUR, [event(1200)]) == {}
    assert limited(run(r, ACCOUNT_3_PER_HOUR, [event(1200)])) == [0]
    assert run(r, ACCOUNT_3_PER_HOUR, [event(1200 + HOUR) for _ in range(3)]) == {}


def test_wall_time_does_not_refill_the_budget(r: redis.Redis[bytes]) -> None:
    """Recorded events replayed later than they happened: the clock is received_at."""
    old = T0 - timedelta(days=400)
    events = [event(account_id="bob", received_at=old) for _ in range(4)]
    assert limited(run(r, ACCOUNT_3_PER_HOUR, events)) == [3]
    assert limited(run(r, ACCOUNT_3_PER_HOUR, [events[0]])) == [0]


def test_over_limit_events_consume_no_budget(r: redis.Redis[bytes]) -> None:
    run(r, ACCOUNT_3_PER_HOUR, [event(0) for _ in range(3)])
    assert len(run(r, ACCOUNT_3_PER_HOUR, [event(10) for _ in range(50)])) == 50
    # had the 50 rejected events counted, the account would be locked out for 50 * 1200 s
    assert run(r, ACCOUNT_3_PER_HOUR, [event(1200)]) == {}


def test_an_event_over_one_limit_consumes_no_budget_of_the_others(
    r: redis.Redis[bytes],
) -> None:
    pol = policy(
        RateLimit(scope="account", limit=2, window_s=HOUR),
        RateLimit(scope="item", limit=100, window_s=HOUR),
    )
    run(r, pol, [event(item_id="x") for _ in range(5)])
    others = [event(account_id=f"u{i}", item_id="x") for i in range(98)]
    assert run(r, pol, others) == {}
    assert limited(run(r, pol, [event(account_id="late", item_id="x")])) == [0]


def test_one_reason_per_scope_listing_every_limit_exceeded(r: redis.Redis[bytes]) -> None:
    pol = policy(
        RateLimit(scope="account", limit=1, window_s=HOUR),
        RateLimit(scope="account", limit=1, window_s=DAY, kinds=("label",)),
        RateLimit(scope="item", limit=1, window_s=HOUR),
    )
    findings = run(r, pol, [event(), event()])
    assert sorted(reason.code for reason in findings[1]) == [
        "rate_limited.account",
        "rate_limited.item",
    ]
    account = next(x for x in findings[1] if x.code == "rate_limited.account")
    assert account.detail == "account: 1 per 3600s; account: 1 per 86400s for label"


def test_new_account_tier_from_account_created_at(r: redis.Redis[bytes]) -> None:
    pol = policy(RateLimit(scope="account", limit=5, window_s=HOUR, new_account_limit=2))
    young = T0 - timedelta(days=6)
    old = T0 - timedelta(days=8)
    new_events = [event(account_id="young", account_created_at=young) for _ in range(5)]
    old_events = [event(account_id="old", account_created_at=old) for _ in range(5)]
    findings = run(r, pol, new_events + old_events)
    assert limited(findings) == [2, 3, 4]
    assert findings[2][0].detail == "account: 2 per 3600s (new account)"


def test_new_account_tier_from_first_seen(r: redis.Redis[bytes]) -> None:
    pol = policy(
        RateLimit(scope="account", limit=5, window_s=HOUR, new_account_limit=2),
        new_account_age_s=DAY,
    )
    assert limited(run(r, pol, [event(0) for _ in range(3)])) == [2]
    # a day after it was first seen, the account has the normal tier
    assert limited(run(r, pol, [event(DAY + 1) for _ in range(6)])) == [5]


def test_first_seen_is_not_reset_by_later_activity(r: redis.Redis[bytes]) -> None:
    pol = policy(
        RateLimit(scope="account", limit=5, window_s=HOUR, new_account_limit=2),
        new_account_age_s=DAY,
    )
    run(r, pol, [event(0)])
    run(r, pol, [event(DAY / 2)])
    assert run(r, pol, [event(DAY + 1) for _ in range(5)]) == {}


def test_first_seen_key_lives_new_account_age_after_the_latest_event(
    r: redis.Redis[bytes],
) -> None:
    pol = policy(
        RateLimit(scope="account", limit=5, window_s=HOUR, new_account_limit=2),
        new_account_age_s=DAY,
    )
    run(r, pol, [event(0)])
    [key] = r.keys("*first_seen*")
    assert DAY * 1000 - 5000 <= r.pttl(key) <= DAY * 1000 + 1


def test_no_first_seen_key_without_a_new_account_tier(r: redis.Redis[bytes]) -> None:
    run(r, ACCOUNT_3_PER_HOUR, [event()])
    assert r.keys("*first_seen*") == []


@pytest.mark.parametrize(
    ("first", "neighbour", "stranger"),
    [
        ("192.0.2.1", "192.0.2.254", "192.0.3.1"),
        ("2001:db8:0:1::1", "2001:db8:0:1:ffff::9", "2001:db8:0:2::1"),
    ],
    ids=["ipv4-24", "ipv6-64"],
)
def test_subnet_groups_ips_by_24_and_64(
    r: redis.Redis[bytes], first: str, neighbour: str, stranger: str
) -> None:
    pol = policy(RateLimit(scope="subnet", limit=2, window_s=HOUR))
    events = [
        event(account_id="a", ip=first),
        event(account_id="b", ip=neighbour),
        event(account_id="c", ip=neighbour),
        event(account_id="d", ip=stranger),
    ]
    findings = run(r, pol, events)
    assert limited(findings) == [2]
    assert findings[2][0].code == "rate_limited.subnet"


def test_ip_spellings_share_one_budget() -> None:
    assert ip_scopes("2001:DB8:0:0::1") == ip_scopes("2001:db8::1")
    assert ip_scopes("::ffff:192.0.2.7") == ("192.0.2.7", "192.0.2.0/24")
    assert ip_scopes("2001:db8:1:2:3:4:5:6") == ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64")


@pytest.mark.parametrize("scope", ["ip", "subnet"])
@pytest.mark.parametrize("ip", [None, "", "not-an-ip", "300.1.2.3", "1.2.3.4/24"])
def test_missing_or_garbage_ip_skips_ip_scopes(
    r: redis.Redis[bytes], scope: Scope, ip: str | None
) -> None:
    pol = policy(RateLimit(scope=scope, limit=1, window_s=HOUR))
    assert run(r, pol, [event(account_id=f"u{i}", ip=ip) for i in range(3)]) == {}
    assert r.dbsize() == 0


def test_missing_device_skips_device_scope(r: redis.Redis[bytes]) -> None:
    pol = policy(RateLimit(scope="device", limit=1, window_s=HOUR))
    assert run(r, pol, [event(account_id=f"u{i}") for i in range(3)]) == {}
    events = [event(account_id=f"u{i}", device_id="phone") for i in range(2)]
    assert limited(run(r, pol, events)) == [1]


def test_item_scope_counts_every_account(r: redis.Redis[bytes]) -> None:
    pol = policy(RateLimit(scope="item", limit=2, window_s=HOUR))
    events = [event(account_id=f"u{i}", item_id="target") for i in range(3)]
    findings = run(r, pol, [*events, event(account_id="u9", item_id="other")])
    assert limited(findings) == [2]


def test_kind_scope_is_namespace_wide_per_kind(r: redis.Redis[bytes]) -> None:
    pol = policy(RateLimit(scope="kind", limit=2, window_s=HOUR))
    reports = [event(account_id=f"u{i}", item_id=f"i{i}", kind="report") for i in range(3)]
    findings = run(r, pol, [*reports, event(kind="vote")])
    assert limited(findings) == [2]
    assert run(r, pol, [event(kind="report")], namespace="other") == {}


def test_kinds_restricts_a_limit_to_those_kinds(r: redis.Redis[bytes]) -> None:
    pol = policy(RateLimit(scope="account", limit=1, window_s=HOUR, kinds=("report",)))
    labels = [event(kind="label") for _ in range(3)]
    reports = [event(kind="report") for _ in range(2)]
    assert limited(run(r, pol, labels + reports)) == [4]


def test_keys_expire_with_their_window(r: redis.Redis[bytes]) -> None:
    pol = policy(
        RateLimit(scope="account", limit=4, window_s=HOUR),
        RateLimit(scope="item", limit=10, window_s=60),
    )
    run(r, pol, [event(0), event(0)])
    account = next(iter(r.keys("*:rl:account:*")))
    item = next(iter(r.keys("*:rl:item:*")))
    grace_ms = TTL_GRACE_S * 1000
    # TTL = TAT - now: two of four events used -> half the window
    assert 0 < r.pttl(account) - grace_ms <= HOUR / 2 * 1000 + 1
    assert r.pttl(account) - grace_ms > HOUR / 2 * 1000 - 5000
    assert 0 < r.pttl(item) - grace_ms <= 2 * 6 * 1000 + 1
    assert all(r.pttl(key) > 0 for key in r.keys("*"))


def test_replay_gives_the_same_results_on_a_fresh_redis(
    r: redis.Redis[bytes], make_event: MakeEvent
) -> None:
    pol = policy(
        RateLimit(scope="account", limit=3, window_s=HOUR, new_account_limit=2),
        RateLimit(scope="subnet", limit=5, window_s=600),
        RateLimit(scope="item", limit=4, window_s=HOUR),
    )
    events = [
        make_event(at=37 * i, account_id=f"acct-{i % 4}", item_id=f"item-{i % 3}", ip="10.0.0.9")
        for i in range(60)
    ]

    def decide_all() -> list[tuple[int, list[str]]]:
        r.flushdb()
        found: list[tuple[int, list[str]]] = []
        for start in range(0, len(events), 7):
            for pos, reasons in run(r, pol, events[start : start + 7]).items():
                found.append((start + pos, [reason.code for reason in reasons]))
        return found

    first = decide_all()
    assert first  # the scenario does hit limits
    assert decide_all() == first


def test_namespaces_have_separate_budgets(r: redis.Redis[bytes]) -> None:
    run(r, ACCOUNT_3_PER_HOUR, [event() for _ in range(3)], namespace="a")
    assert run(r, ACCOUNT_3_PER_HOUR, [event() for _ in range(3)], namespace="b") == {}
    assert all(key.startswith((b"fg:{a}:", b"fg:{b}:")) for key in r.keys("*"))


def test_no_limits_touch_nothing(r: redis.Redis[bytes]) -> None:
    assert run(r, Policy(), [event()]) == {}
    assert r.dbsize() == 0


_namespaces = (f"prop{n}-{uuid.uuid4().hex[:6]}" for n in itertools.count())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.integers(min_value=1, max_value=6),
    window_s=st.sampled_from([1.0, 7.0, 60.0, 3600.0]),
    times_ms=st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=60),
    batch=st.integers(min_value=1, max_value=20),
    ordered=st.booleans(),
)
def test_admitted_events_never_exceed_the_gcra_bound(
    r: redis.Redis[bytes],
    limit: int,
    window_s: float,
    times_ms: list[int],
    batch: int,
    ordered: bool,
) -> None:
    """Whatever the event times (in order or not) and however they are batched, in any
    window_s-long interval at most `limit` (the burst) + `limit` - 1 (the refill) events
    are admitted, and over any interval L at most limit + L * limit / window_s."""
    if ordered:
        times_ms.sort()
    pol = policy(RateLimit(scope="account", limit=limit, window_s=window_s))
    namespace = next(_namespaces)
    events = [event(t / 1000) for t in times_ms]
    admitted: list[int] = []
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        findings = run(r, pol, chunk, namespace=namespace)
        admitted += [times_ms[start + i] for i in range(len(chunk)) if i not in findings]
    admitted.sort()
    window_ms = window_s * 1000
    for i, begin in enumerate(admitted):
        inside = [t for t in admitted[i:] if t < begin + window_ms]
        assert len(inside) <= 2 * limit - 1
        for j, end in enumerate(admitted[i:]):
            assert j + 1 <= limit + (end - begin) * limit / window_ms
    assert admitted  # the first event is always admitted


_limits = st.builds(
    RateLimit,
    scope=st.sampled_from(["account", "ip", "subnet", "device", "item", "kind"]),
    limit=st.integers(min_value=1, max_value=4),
    window_s=st.sampled_from([10.0, 60.0, 3600.0]),
    new_account_limit=st.none() | st.integers(min_value=1, max_value=2),
    kinds=st.none() | st.just(("report",)),
)
_events = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["label", "report"]),
            "account_id": st.sampled_from(["a", "b", "c"]),
            "item_id": st.sampled_from(["i1", "i2"]),
            "ip": st.sampled_from([None, "10.0.0.1", "10.0.0.2", "10.0.1.1", "::ffff:10.0.0.1"]),
            "device_id": st.sampled_from([None, "d1", "d2"]),
            "at": st.integers(min_value=0, max_value=120_000),
            "age_days": st.sampled_from([None, 1, 30]),
        }
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limits=st.lists(_limits, min_size=1, max_size=4, unique_by=lambda limit: limit.name),
    fields=_events,
)
def test_a_batch_is_decided_as_its_events_one_by_one(
    r: redis.Redis[bytes], limits: list[RateLimit], fields: list[dict[str, Any]]
) -> None:
    """The script aggregates a batch (each key read once, written once); its findings
    and the state it leaves equal those of the events checked one at a time."""
    pol = policy(*limits, new_account_age_s=7 * DAY)
    events = []
    for f in fields:
        at = T0 + timedelta(milliseconds=f["at"])
        age = f["age_days"]
        created = None if age is None else at - timedelta(days=age)
        events.append(
            event(
                0, kind=f["kind"], account_id=f["account_id"], item_id=f["item_id"], ip=f["ip"],
                device_id=f["device_id"], received_at=at, account_created_at=created,
            )
        )  # fmt: skip
    batch_ns, single_ns = next(_namespaces), next(_namespaces)
    batch = run(r, pol, events, namespace=batch_ns)
    one_by_one = {}
    for index, e in enumerate(events):
        if found := run(r, pol, [e], namespace=single_ns):
            one_by_one[index] = found[0]
    assert batch == one_by_one

    def state(namespace: str) -> dict[bytes, bytes | None]:
        prefix = f"fg:{{{namespace}}}:".encode()
        names = sorted(r.keys(prefix + b"*"))
        return {n.removeprefix(prefix): v for n, v in zip(names, r.mget(names), strict=True)}

    assert state(batch_ns) == state(single_ns)
