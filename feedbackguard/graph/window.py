"""A columnar window of feedback events: the input of every graph detector.

Detectors work on integer-coded numpy arrays (one entry per event) so that they can
be vectorised and fed to scipy.sparse; the string ids are kept once, for evidence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from feedbackguard.events import FeedbackEvent

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MISSING = -1
"""Code of an absent ip / subnet / device."""

# Parsing an address costs ~3 us; a window repeats addresses, so parsed ones are kept.
SUBNET_CACHE_SIZE = 1 << 17
IPV4_SUBNET_BITS = 24
IPV6_SUBNET_BITS = 48


@lru_cache(maxsize=SUBNET_CACHE_SIZE)
def subnet_of(ip: str) -> str:
    """The network an address belongs to for infrastructure clustering (/24, /48).

    Rate limits and NAT allowances work per subnet because one attacker renting a
    block of addresses gets consecutive ones. A string that is not an address is its
    own subnet, so garbage can never merge two unrelated clients.
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = IPV4_SUBNET_BITS if addr.version == 4 else IPV6_SUBNET_BITS
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


@dataclass(frozen=True)
class _Coded:
    codes: IntArray  # per cell; MISSING where the cell was None
    labels: tuple[str, ...]  # per code


def _first_seen_codes(column: Sequence[str | None]) -> _Coded:
    """Dense integer codes for a column's strings, in order of first appearance."""
    first_seen = dict.fromkeys(column)
    first_seen.pop(None, None)
    index: dict[str | None, int] = {key: code for code, key in enumerate(first_seen)}
    index[None] = MISSING
    codes = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=len(column))
    return _Coded(codes, tuple(cast("dict[str, None]", first_seen)))


def value_key(value: bool | int | float | str) -> str:
    # True and 1 are different feedback values although they hash alike.
    return f"{type(value).__name__}:{value!r}"


class Row(NamedTuple):
    """What the graph needs of one event, small enough to keep a window of them in
    Redis (stored as a JSON array in field order)."""

    event_id: str
    account: str
    item: str
    value_key: str
    """`value_key(value)`: equal values, and only those, share it."""
    value_text: str
    """The value as shown to moderators (`str(value)`)."""
    time: float
    """Received at, POSIX seconds."""
    ip: str | None
    device: str | None
    account_created: float | None
    """The account's creation time as the event claims it, POSIX seconds."""


def row_of(event: FeedbackEvent) -> Row:
    created = event.account_created_at
    return Row(
        event.event_id,
        event.account_id,
        event.item_id,
        value_key(event.value),
        str(event.value),
        event.received_at.timestamp(),
        event.ip,
        event.device_id,
        None if created is None else created.timestamp(),
    )


@dataclass(frozen=True)
class Rows:
    """Many `Row`s, column by column: the window as loaded from Redis.

    Columns rather than a `Row` per event: a window holds up to a million events, and
    the garbage collector never untracks instances of a tuple subclass, so a `Row`
    each would slow decoding and every full collection of the worker.
    """

    event_id: list[str] = field(default_factory=list)
    account: list[str] = field(default_factory=list)
    item: list[str] = field(default_factory=list)
    value_key: list[str] = field(default_factory=list)
    value_text: list[str] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    ip: list[str | None] = field(default_factory=list)
    device: list[str | None] = field(default_factory=list)
    account_created: list[float | None] = field(default_factory=list)

    @classmethod
    def of(cls, records: Iterable[Sequence[Any]]) -> Rows:
        """Rows from records in `Row` field order (`Row`s, or stored JSON arrays)."""
        out = cls()
        out.extend(records)
        return out

    def extend(self, records: Iterable[Sequence[Any]]) -> None:
        """Append records in `Row` field order."""
        # One record at a time, so that each decoded record is freed at once: the
        # garbage collector walks every list still held.
        add_event_id, add_account, add_item = (
            self.event_id.append,
            self.account.append,
            self.item.append,
        )
        add_key, add_text, add_time = (
            self.value_key.append,
            self.value_text.append,
            self.time.append,
        )
        add_ip, add_device, add_created = (
            self.ip.append,
            self.device.append,
            self.account_created.append,
        )
        for event_id, account, item, key, text, t, ip, device, created in records:
            add_event_id(event_id)
            add_account(account)
            add_item(item)
            add_key(key)
            add_text(text)
            add_time(float(t))
            add_ip(ip)
            add_device(device)
            add_created(created)

    def __len__(self) -> int:
        return len(self.event_id)

    def _columns(self) -> tuple[list[Any], ...]:
        return tuple(getattr(self, name) for name in Row._fields)

    def row(self, index: int) -> Row:
        return Row._make(column[index] for column in self._columns())

    def take(self, indices: Sequence[int]) -> Rows:
        """The rows at `indices`, in that order."""
        return Rows(*([column[i] for i in indices] for column in self._columns()))

    @classmethod
    def concat(cls, parts: Sequence[Rows]) -> Rows:
        """All rows of `parts`, in order, in new lists."""
        return cls(
            *(
                list(chain.from_iterable(getattr(part, name) for part in parts))
                for name in Row._fields
            )
        )

    def newest_first(self, limit: int | None = None, account: str | None = None) -> list[Row]:
        """The rows (of `account` if given) by event time, newest first (ties in order)."""
        picked: Iterable[int] = (
            range(len(self))
            if account is None
            else (i for i, a in enumerate(self.account) if a == account)
        )
        order = sorted(picked, key=lambda i: -self.time[i])
        return [self.row(i) for i in order[:limit]]


@dataclass(frozen=True, eq=False)
class EventWindow:
    """One analysis window: E events over A accounts and I items.

    Per event: `account`, `item`, `value` (codes), `time` (POSIX seconds), and `ip`,
    `subnet`, `device` (codes, `MISSING` when absent). Per account: `account_created`
    (POSIX seconds, NaN when unknown). The `*_ids` tuples map codes back to strings.
    """

    account: IntArray
    item: IntArray
    value: IntArray
    time: FloatArray
    ip: IntArray
    subnet: IntArray
    device: IntArray
    account_created: FloatArray
    account_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    ip_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()

    @property
    def n_events(self) -> int:
        return int(self.account.shape[0])

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def end(self) -> float:
        """Time of the latest event (0 for an empty window)."""
        return float(self.time.max()) if self.n_events else 0.0

    def first_seen(self) -> FloatArray:
        """Per account, the time of its first event in the window (inf if none)."""
        out = np.full(self.n_accounts, np.inf)
        np.minimum.at(out, self.account, self.time)
        return out

    def young(self, age_s: float) -> BoolArray:
        """Per account: created less than `age_s` before its first event here.

        Accounts without a creation time are treated as not young: the signal is
        absent, and guessing would flag every product that does not send it.
        """
        age = self.first_seen() - self.account_created
        return np.asarray(np.nan_to_num(age, nan=np.inf) < age_s)

    @classmethod
    def from_events(cls, events: Sequence[FeedbackEvent]) -> EventWindow:
        """Build a window from validated events (all of one namespace, any order)."""
        return cls.from_rows(Rows.of(row_of(ev) for ev in events))

    @classmethod
    def from_rows(cls, rows: Rows) -> EventWindow:
        """Build a window from compact rows (`row_of`), as the pipeline keeps them.

        Codes are given in order of first appearance, each column coded by C loops
        (`dict.fromkeys`, `map`), about twice as fast as a Python call per cell
        (docs/benchmarks.md).
        """
        addr = rows.ip
        accounts = _first_seen_codes(rows.account)
        items = _first_seen_codes(rows.item)
        values = _first_seen_codes(rows.value_key)
        ips = _first_seen_codes(addr)
        subnets = _first_seen_codes([None if a is None else subnet_of(a) for a in addr])
        devices = _first_seen_codes(rows.device)
        made = [np.nan if t is None else t for t in rows.account_created]
        # The earliest claim wins: a later event cannot make an account older.
        account_created = np.full(len(accounts.labels), np.nan)
        np.fmin.at(account_created, accounts.codes, np.array(made, dtype=np.float64))
        return cls(
            account=accounts.codes,
            item=items.codes,
            value=values.codes,
            time=np.array(rows.time, dtype=np.float64),
            ip=ips.codes,
            subnet=subnets.codes,
            device=devices.codes,
            account_created=account_created,
            account_ids=accounts.labels,
            item_ids=items.labels,
            ip_ids=ips.labels,
            subnet_ids=subnets.labels,
            device_ids=devices.labels,
        )

    @classmethod
    def from_arrays(
        cls,
        account: npt.ArrayLike,
        item: npt.ArrayLike,
        time: npt.ArrayLike,
        *,
        value: npt.ArrayLike | None = None,
        ip: npt.ArrayLike | None = None,
        subnet: npt.ArrayLike | None = None,
        device: npt.ArrayLike | None = None,
        account_created: npt.ArrayLike | None = None,
        n_accounts: int | None = None,
        n_items: int | None = None,
    ) -> EventWindow:
        """Build a window from integer-coded arrays (benchmarks, replays, stores).

        Codes must be non-negative (ip / subnet / device may be `MISSING`); ids are
        generated as the decimal code (`"a17"`, `"i3"`, ...). Raises ValueError on
        mismatched lengths, negative or non-finite input.
        """
        acc = _codes(account, "account")
        n = acc.shape[0]
        itm = _codes(item, "item", n)
        t = np.asarray(time, dtype=np.float64)
        if t.shape != (n,):
            raise ValueError(f"time has shape {t.shape}, expected ({n},)")
        if not np.all(np.isfinite(t)):
            raise ValueError("time must be finite")
        val = np.zeros(n, dtype=np.int64) if value is None else _codes(value, "value", n)
        ipc = _optional_codes(ip, "ip", n)
        # Without explicit subnets each ip is its own subnet (the caller knows better).
        sub = ipc.copy() if subnet is None else _optional_codes(subnet, "subnet", n)
        dev = _optional_codes(device, "device", n)
        n_acc = _count(acc, n_accounts, "n_accounts")
        n_itm = _count(itm, n_items, "n_items")
        if account_created is None:
            created = np.full(n_acc, np.nan)
        else:
            created = np.asarray(account_created, dtype=np.float64)
            if created.shape != (n_acc,):
                raise ValueError(f"account_created has shape {created.shape}, expected ({n_acc},)")
        return cls(
            account=acc,
            item=itm,
            value=val,
            time=t,
            ip=ipc,
            subnet=sub,
            device=dev,
            account_created=created,
            account_ids=tuple(f"a{i}" for i in range(n_acc)),
            item_ids=tuple(f"i{i}" for i in range(n_itm)),
            ip_ids=tuple(f"ip{i}" for i in range(_count(ipc, None, "ip"))),
            subnet_ids=tuple(f"net{i}" for i in range(_count(sub, None, "subnet"))),
            device_ids=tuple(f"dev{i}" for i in range(_count(dev, None, "device"))),
        )


def _codes(raw: npt.ArrayLike, name: str, n: int | None = None) -> IntArray:
    arr = np.asarray(raw)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n if n is not None else 'n'},)")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes")
    out = arr.astype(np.int64, copy=False)
    if out.size and int(out.min()) < 0:
        raise ValueError(f"{name} codes must be >= 0")
    return out


def _optional_codes(raw: npt.ArrayLike | None, name: str, n: int) -> IntArray:
    if raw is None:
        return np.full(n, MISSING, dtype=np.int64)
    arr = np.asarray(raw)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes")
    out = arr.astype(np.int64, copy=False)
    if out.size and int(out.min()) < MISSING:
        raise ValueError(f"{name} codes must be >= {MISSING}")
    return out


def _count(codes: IntArray, declared: int | None, name: str) -> int:
    needed = int(codes.max()) + 1 if codes.size else 0
    if declared is None:
        return needed
    if declared < needed:
        raise ValueError(f"{name}={declared} but codes go up to {needed - 1}")
    return declared
