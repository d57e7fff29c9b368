"""The rows of an export file: flat, typed columns a training job reads as they are.

One row per admitted event (`event_row`), or with `--per-item` one row per item
(`ItemTally`). The event's value is split by type: a string is the `label`, a number
or boolean is the `value` (booleans as 1.0 / 0.0), so every column has one type.

Personal data (IP, user agent, device, the raw account id) is left out unless asked
for; `account` is always there: a keyed pseudonym (HMAC of the account id under the
store's signing key), the same in every export of the store and meaningless without
the key.

`weight` is 1.0 for every event: decisions carry no weight today. The column is in
the schema so a future per-decision weight changes no training job.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from feedbackguard.store.rows import Row, aware

ColumnType = Literal["string", "int64", "float64", "timestamp", "list<float64>"]

PSEUDONYM_DOMAIN = b"fg.export.account.v1\x00"
PSEUDONYM_CHARS = 32  # 128 bits of the HMAC: no collisions in practice
EVENT_WEIGHT = 1.0  # decisions carry no weight yet (see the module docstring)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType


EVENT_COLUMNS = (
    Column("seq", "int64"),
    Column("event_id", "string"),
    Column("namespace", "string"),
    Column("item_id", "string"),
    Column("kind", "string"),
    Column("label", "string"),
    Column("value", "float64"),
    Column("text", "string"),
    Column("features", "list<float64>"),
    Column("account", "string"),
    Column("received_at", "timestamp"),
    Column("admitted_at", "timestamp"),
    Column("decided_by", "string"),
    Column("weight", "float64"),
)
PII_COLUMNS = (
    Column("account_id", "string"),
    Column("ip", "string"),
    Column("user_agent", "string"),
    Column("device_id", "string"),
)
ITEM_COLUMNS = (
    Column("namespace", "string"),
    Column("kind", "string"),
    Column("item_id", "string"),
    Column("label", "string"),
    Column("value", "float64"),
    Column("support", "int64"),
    Column("agreement", "float64"),
    Column("admitted_at", "timestamp"),
)


def columns(per_item: bool, include_pii: bool) -> tuple[Column, ...]:
    """The columns of an export file, in order."""
    if per_item:
        return ITEM_COLUMNS
    return EVENT_COLUMNS + PII_COLUMNS if include_pii else EVENT_COLUMNS


def pseudonym(key: bytes, account_id: str) -> str:
    """The account's keyed pseudonym: stable for one key, unlinkable without it."""
    message = PSEUDONYM_DOMAIN + account_id.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def event_row(row: Row, key: bytes, include_pii: bool) -> dict[str, Any]:
    """One stored row as an export row (`EVENT_COLUMNS`, plus `PII_COLUMNS` if asked)."""
    event = orjson.loads(row["event"])
    value = event["value"]
    payload = event.get("payload") or {}
    out: dict[str, Any] = {
        "seq": row["id"],
        "event_id": row["event_id"],
        "namespace": row["namespace"],
        "item_id": row["item_id"],
        "kind": row["kind"],
        "label": value if isinstance(value, str) else None,
        "value": None if isinstance(value, str) else float(value),
        "text": payload.get("text"),
        "features": payload.get("features"),
        "account": pseudonym(key, row["account_id"]),
        "received_at": aware(row["received_at"]),
        "admitted_at": aware(row["admitted_at"]),
        "decided_by": decided_by_group(row["decided_by"]),
        "weight": EVENT_WEIGHT,
    }
    if include_pii:
        out["account_id"] = row["account_id"]
        out["ip"] = event.get("ip")
        out["user_agent"] = event.get("user_agent")
        out["device_id"] = event.get("device_id")
    return out


def decided_by_group(decided_by: str) -> str:
    """'auto' or 'moderator' (a moderator's name is left out)."""
    return decided_by.split(":", 1)[0]


@dataclass(slots=True)
class _Item:
    votes: defaultdict[tuple[str | None, float | None], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    support: int = 0
    admitted_at: Any = None


class ItemTally:
    """Admitted events gathered per (namespace, kind, item): the label the item gets is
    the weighted majority of its events' values (ties: the value seen first)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], _Item] = {}

    def add(self, event: dict[str, Any]) -> None:
        key = (event["namespace"], event["kind"], event["item_id"])
        item = self._items.setdefault(key, _Item())
        item.votes[(event["label"], event["value"])] += event["weight"]
        item.support += 1
        item.admitted_at = event["admitted_at"]  # rows come oldest first: the latest

    def rows(self) -> Iterator[dict[str, Any]]:
        """One row per item (`ITEM_COLUMNS`), in the order items were first seen."""
        for (namespace, kind, item_id), item in self._items.items():
            (label, value), top = max(item.votes.items(), key=lambda kv: kv[1])
            yield {
                "namespace": namespace,
                "kind": kind,
                "item_id": item_id,
                "label": label,
                "value": value,
                "support": item.support,
                "agreement": top / sum(item.votes.values()),
                "admitted_at": item.admitted_at,
            }
