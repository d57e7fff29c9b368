"""Rate limits: a GCRA per limit and per account, IP, subnet, device, item or kind.

Each `RateLimit` of the policy allows `limit` events per `window_s` for each distinct
value of its scope, as a GCRA (generic cell rate algorithm, the token bucket in
closed form): one TAT number per key with a TTL that ends with its window, so Redis
state is O(1) per key whatever the limit (docs/architecture.md, "Design choices").

Semantics, all on *event time* (`received_at`, never the wall clock) so that a
replayed stream decides exactly like live traffic:

* Burst: `limit` events at the same instant are allowed; then one more every
  `window_s / limit`. Hence at most `limit` events at once and at most
  `2 * limit - 1` in any `window_s`-long interval (burst plus refill); over a long
  run the rate tends to `limit / window_s`.
* An over-limit event consumes no budget, in any of its limits: it is rejected and
  does no harm, so a client that bursts is held to the configured rate of admitted
  events and recovers as soon as it slows down, instead of locking itself (or, for
  shared IP/item keys, its neighbours) out for as long as it keeps retrying. An event
  over one limit does not consume the others either.
* Events are evaluated in batch order: the Nth event of a key sees the first N-1.
* New accounts (age < `new_account_age_s`) use `new_account_limit` where one is set.
  Age comes from `account_created_at`, else from a per-account first-seen key whose
  TTL is `new_account_age_s` *after the account's latest event*: an account that
  stays active keeps its first-seen time, one dormant that long is new again when it
  comes back. On a key shared by several accounts (IP, item...) a new account's
  event costs `window_s / new_account_limit` of the same budget.
* IPs are normalised (`ipaddress`), so spellings of one IPv6 address and IPv4-mapped
  IPv6 addresses share keys; subnets are the /24 (IPv4) or /64 (IPv6). A missing or
  unparseable IP skips the ip and subnet scopes; a missing device skips the device
  scope.
* Late events (older than the key's recent traffic) are judged against the newer
  state, which can only make them stricter.
* A redelivered batch consumes budget again (the check cannot tell a redelivery from
  new traffic without per-event state); the effect is a slightly stricter limit
  after a worker crash.

The whole batch is one EVALSHA of `lua/gcra.lua`: every key of a namespace shares the
`{namespace}` hash tag, so the script touches one Cluster slot.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

import orjson

from feedbackguard import keys, scripts
from feedbackguard.checks.base import CheckContext, Findings, Reason
from feedbackguard.events import KINDS, FeedbackEvent
from feedbackguard.policy import RateLimit, RateLimits, Scope

US_PER_S: Final = 1_000_000
MS_PER_S: Final = 1_000

TTL_GRACE_S: Final = 60.0
"""Extra life of every limit key beyond its TAT. TTLs run on the server's clock while
budgets run on event time; the grace covers a worker that falls behind (a stall, a
crashed batch reclaimed later) so a key does not vanish while it still matters."""

IPV4_SUBNET_PREFIX: Final = 24
IPV6_SUBNET_PREFIX: Final = 64
IP_CACHE_SIZE: Final = 65_536
"""Distinct IPs whose parsed form is kept: parsing costs microseconds, a lookup not."""

PLAN_CACHE_SIZE: Final = 64
"""(namespace, policy) plans kept; policies change rarely, but never grow unbounded."""

SCORE: Final = 1.0
"""An event over a limit is rejected outright."""

SCOPES: Final[tuple[Scope, ...]] = ("account", "ip", "subnet", "device", "item", "kind")
_SCOPE_INDEX: Final = {scope: i for i, scope in enumerate(SCOPES)}


_IPV4_SUBNET_MASK: Final = ~((1 << (32 - IPV4_SUBNET_PREFIX)) - 1)
_IPV6_SUBNET_MASK: Final = ~((1 << (128 - IPV6_SUBNET_PREFIX)) - 1)


@lru_cache(maxsize=IP_CACHE_SIZE)
def ip_scopes(raw: str | None) -> tuple[str, str] | None:
    """(normalised IP, its subnet) of a client IP, or None when missing or not an IP.

    IPv4-mapped IPv6 addresses count as the IPv4 address, and IPv6 addresses are
    compressed, so one client cannot get several budgets by switching notation."""
    if not raw:
        return None
    try:
        addr = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is None:
            net6 = ipaddress.IPv6Address(int(addr) & _IPV6_SUBNET_MASK)
            return str(addr), f"{net6}/{IPV6_SUBNET_PREFIX}"
        addr = addr.ipv4_mapped
    net4 = ipaddress.IPv4Address(int(addr) & _IPV4_SUBNET_MASK)
    return str(addr), f"{net4}/{IPV4_SUBNET_PREFIX}"


def to_us(moment: datetime) -> int:
    """An aware datetime in integer microseconds since the epoch (exact: the float
    timestamp is within a quarter microsecond, and rounding recovers the integer)."""
    return round(moment.timestamp() * US_PER_S)


def describe(limit: RateLimit, *, new_account: bool) -> str:
    """Human-readable limit, e.g. "account: 120 per 3600s" (no attacker-supplied text)."""
    count = limit.new_account_limit if new_account and limit.new_account_limit else limit.limit
    text = f"{limit.scope}: {count} per {limit.window_s:g}s"
    if limit.kinds:
        text += f" for {'+'.join(sorted(limit.kinds))}"
    if new_account and limit.new_account_limit:
        text += " (new account)"
    return text


def gcra_params(window_s: float, limit: int) -> tuple[int, int]:
    """(emission interval T, burst tolerance tau) in integer microseconds.

    T is rounded up so integer arithmetic never allows more than `limit` per window;
    tau = (limit - 1) * T lets exactly `limit` events through at one instant."""
    interval = math.ceil(window_s * US_PER_S / limit)
    return interval, (limit - 1) * interval


@dataclass(frozen=True, slots=True)
class _KindPlan:
    """The limits that apply to one kind of feedback."""

    number: int
    """1-based index of this kind in the script's `p` table."""
    keys: tuple[tuple[int, str], ...]
    """(scope index, key prefix) of each limit that applies, in the `p` table's order."""
    tiered: bool
    """Whether any of them has a new-account tier (so account age matters)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything about one (namespace, rate-limit policy) that does not depend on the
    batch, computed once."""

    kinds: dict[str, _KindPlan]
    """Only the kinds that some limit applies to."""
    age_us: int
    first_seen_prefix: str
    header: bytes
    """The script argument's constant part: a JSON object missing its last brace."""
    details: dict[int, tuple[Scope, str]]
    """Code returned by the script -> (scope, reason detail)."""

    @classmethod
    def build(cls, namespace: str, policy: RateLimits) -> _Plan:
        limits = policy.limits
        applies: dict[str, list[int]] = {kind: [] for kind in KINDS}
        prefixes: list[str] = []
        params: list[tuple[int, int, int, int]] = []
        details: dict[int, tuple[Scope, str]] = {}
        for i, limit in enumerate(limits):
            name = limit.name
            while keys.rate_limit_prefix(namespace, name) in prefixes:
                name += "+"  # two limits with one name must not share a key
            prefixes.append(keys.rate_limit_prefix(namespace, name))
            for kind in limit.kinds or KINDS:
                applies[kind].append(i)
            normal = gcra_params(limit.window_s, limit.limit)
            new = gcra_params(limit.window_s, limit.new_account_limit or limit.limit)
            params.append((*normal, *new))
            details[2 * i] = (limit.scope, describe(limit, new_account=False))
            details[2 * i + 1] = (limit.scope, describe(limit, new_account=True))
        kinds: dict[str, _KindPlan] = {}
        table: list[list[int]] = []
        for kind_name, found in applies.items():
            if not found:
                continue
            table.append([i + 1 for i in found])
            kinds[kind_name] = _KindPlan(
                number=len(table),
                keys=tuple((_SCOPE_INDEX[limits[i].scope], prefixes[i]) for i in found),
                tiered=any(limits[i].new_account_limit is not None for i in found),
            )
        age_us = round(policy.new_account_age_s * US_PER_S)
        constant = {"age": age_us, "grace": round(TTL_GRACE_S * MS_PER_S), "l": params, "p": table}
        return cls(
            kinds=kinds,
            age_us=age_us,
            first_seen_prefix=keys.first_seen_prefix(namespace),
            header=orjson.dumps(constant)[:-1],
            details=details,
        )


class RateLimitCheck:
    """The rate-limit check (the Check protocol): one script call per batch.

    Reports `rate_limited.<scope>` (score 1.0) once per scope an event is over, the
    detail naming every limit of that scope it exceeded."""

    name = "ratelimit"

    def __init__(self) -> None:
        self._plans: dict[tuple[str, RateLimits], _Plan] = {}

    def _plan(self, namespace: str, policy: RateLimits) -> _Plan:
        plan = self._plans.get((namespace, policy))
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            plan = self._plans[(namespace, policy)] = _Plan.build(namespace, policy)
        return plan

    def __call__(self, events: Sequence[FeedbackEvent], ctx: CheckContext) -> Findings:
        policy = ctx.policy.ratelimit
        if not events or not policy.limits:
            return {}
        plan = self._plan(ctx.namespace, policy)
        kinds = plan.kinds
        age_us = plan.age_us
        key_list: list[str] = []
        # Per key prefix, the KEYS index of each value the batch has: the values are
        # the events' own strings, whose hashes Python keeps, so a value seen before
        # costs one lookup and its key is built once (a key built and hashed per event
        # and limit was half of this loop; benchmarks/ingest_paths.py, "ratelimit").
        seen: dict[str, dict[str, int]] = {}
        slots = {
            name: [(scope, prefix, seen.setdefault(prefix, {})) for scope, prefix in kind.keys]
            for name, kind in kinds.items()
        }
        first_seen_index = seen.setdefault(plan.first_seen_prefix, {})
        rows: list[int] = []  # every event's fields, one after the other (lua/gcra.lua)
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
                first_seen = first_seen_index.get(event.account_id, 0)
                if not first_seen:
                    key_list.append(plan.first_seen_prefix + event.account_id)
                    first_seen = first_seen_index[event.account_id] = len(key_list)
            ips = ip_scopes(event.ip)
            values = (
                event.account_id,
                ips[0] if ips else None,
                ips[1] if ips else None,
                event.device_id or None,
                event.item_id,
                event.kind,
            )
            rows += (now, first_seen, new, kind.number)
            for scope, prefix, index_of in slots[event.kind]:
                value = values[scope]
                if value is None:
                    rows.append(0)
                    continue
                index = index_of.get(value, 0)
                if not index:
                    key_list.append(prefix + value)
                    index = index_of[value] = len(key_list)
                rows.append(index)
            positions.append(pos)
        if not rows:
            return {}
        blob = b"".join((plan.header, b',"e":', orjson.dumps(rows), b"}"))
        over: list[int] = scripts.run(ctx.redis, "gcra", key_list, [blob])
        return self._findings(plan, positions, over)

    @staticmethod
    def _findings(plan: _Plan, positions: list[int], over: list[int]) -> Findings:
        """One Reason per (event, scope), the detail listing each exceeded limit."""
        found: dict[int, dict[Scope, list[str]]] = {}
        for i in range(0, len(over), 2):
            scope, detail = plan.details[over[i + 1]]
            found.setdefault(positions[over[i]], {}).setdefault(scope, []).append(detail)
        return {
            pos: [
                Reason(code=f"rate_limited.{scope}", detail="; ".join(details), score=SCORE)
                for scope, details in scopes.items()
            ]
            for pos, scopes in found.items()
        }
