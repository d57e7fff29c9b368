"""Admin allow and deny lists of IPs, subnets and devices (product-wide).

An entry says `allow` or `deny` for one value. An event's IP is judged by the most
specific entry that covers it: an exact IP entry, else the longest listed subnet
containing it. So an admin can deny a hosting range and allow one office address
inside it. A device is judged by its exact entry. A `deny` anywhere on the event
(IP or device) makes it denied unless an `allow` covers the same value more
specifically; `checks.lists.ListCheck` turns that into the reason `list.denied`.

Each kind is one Redis hash ``fg:lists:<kind>`` (value -> JSON {action, actor, note,
at}); changes are audited. IPs and subnets are normalised with `ipaddress` so every
spelling of one address shares its entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

import orjson
import redis

from feedbackguard import audit, keys

Kind = Literal["ip", "subnet", "device"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
Action = Literal["allow", "deny"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
DEVICE_MAX: Final = 256

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidEntry(ValueError):
    """A value that is not a valid IP, subnet or device id."""


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    addr = ipaddress.ip_address(value.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def normalise(kind: str, value: str) -> str:
    """The canonical spelling of `value` for `kind` (InvalidEntry when invalid)."""
    try:
        if kind == "ip":
            return str(_ip(value))
        if kind == "subnet":
            return str(ipaddress.ip_network(value.strip(), strict=False))
        if kind == "device":
            if not value or len(value) > DEVICE_MAX or not value.isprintable():
                raise InvalidEntry(f"invalid device id (1-{DEVICE_MAX} printable chars)")
            return value
    except ValueError as exc:
        raise InvalidEntry(f"invalid {kind}: {value!r}") from exc
    raise InvalidEntry(f"unknown list kind {kind!r}; expected one of {', '.join(KINDS)}")


def put(
    r: redis.Redis[bytes], kind: str, value: str, action: str, actor: str, note: str = ""
) -> str:
    """Add or replace the entry for `value`; returns its canonical spelling."""
    if action not in ACTIONS:
        raise InvalidEntry(f"unknown action {action!r}; expected allow or deny")
    canonical = normalise(kind, value)
    entry = {"action": action, "actor": actor, "note": note, "at": datetime.now(UTC).isoformat()}
    # Audited first: the audit log has a slot of its own (audit.record).
    audit.record(r, actor, f"list.{action}", kind=kind, value=canonical, note=note)
    r.hset(keys.allow_deny_list(kind), canonical, orjson.dumps(entry))
    return canonical


def remove(r: redis.Redis[bytes], kind: str, value: str, actor: str) -> bool:
    """Delete the entry for `value`; True when there was one."""
    canonical = normalise(kind, value)
    audit.record(r, actor, "list.remove", kind=kind, value=canonical)
    return bool(r.hdel(keys.allow_deny_list(kind), canonical))


def entries(r: redis.Redis[bytes], kind: str) -> dict[str, dict[str, Any]]:
    """Every entry of one list: value -> {action, actor, note, at}."""
    normalise_kind(kind)
    return {k.decode(): orjson.loads(v) for k, v in r.hgetall(keys.allow_deny_list(kind)).items()}


def normalise_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise InvalidEntry(f"unknown list kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


class Snapshot:
    """The three lists read once (one round trip), for judging many values."""

    def __init__(
        self,
        ips: dict[str, Action],
        subnets: dict[str, Action],
        devices: dict[str, Action],
    ) -> None:
        self.ips = ips
        self.devices = devices
        # Longest prefix first, so the first subnet containing an IP is the most specific.
        self.subnets: list[tuple[IPNetwork, Action]] = sorted(
            ((ipaddress.ip_network(net), act) for net, act in subnets.items()),
            key=lambda pair: -pair[0].prefixlen,
        )

    @property
    def empty(self) -> bool:
        return not (self.ips or self.subnets or self.devices)

    @classmethod
    def load(cls, r: redis.Redis[bytes]) -> Snapshot:
        with r.pipeline(transaction=False) as p:
            for kind in KINDS:
                p.hgetall(keys.allow_deny_list(kind))
            raw = p.execute()
        parsed = [
            {k.decode(): orjson.loads(v)["action"] for k, v in found.items()} for found in raw
        ]
        return cls(*parsed)

    def ip(self, value: str | None) -> Action | None:
        if not value:
            return None
        try:
            addr = _ip(value)
        except ValueError:
            return None
        exact = self.ips.get(str(addr))
        if exact is not None:
            return exact
        for net, act in self.subnets:
            if addr.version == net.version and addr in net:
                return act
        return None

    def device(self, value: str | None) -> Action | None:
        return self.devices.get(value) if value else None

    def judge(self, ip: str | None, device: str | None) -> Action | None:
        """`deny` when the IP or the device is denied (and not allowed), `allow` when
        either is allowed and neither denied, else None."""
        found = [self.ip(ip), self.device(device)]
        if "deny" in found:
            return "deny"
        if "allow" in found:
            return "allow"
        return None


def listed(r: redis.Redis[bytes], kind: str, value: str) -> Action | None:
    """The entry that governs `value` of `kind`: "allow", "deny" or None.

    For an IP this is the exact entry, else the most specific listed subnet
    containing it; for a subnet or device its exact entry."""
    snap = Snapshot.load(r)
    canonical = normalise(kind, value)
    if kind == "ip":
        return snap.ip(canonical)
    if kind == "subnet":
        return {str(net): act for net, act in snap.subnets}.get(canonical)
    return snap.device(canonical)


def judge_many(
    r: redis.Redis[bytes], pairs: Iterable[tuple[str | None, str | None]]
) -> Sequence[Action | None]:
    """For (ip, device) pairs, what the lists say (see `Snapshot.judge`)."""
    snap = Snapshot.load(r)
    return [snap.judge(ip, device) for ip, device in pairs]
