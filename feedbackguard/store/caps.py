"""Limits on how much one account weighs in an export, earliest items kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.store.queries import stream
from feedbackguard.store.rows import Row


class ExportCaps(BaseModel):
    """Limits on how much one account weighs in an export (earliest items kept).

    A swarm that slipped through still cannot make one account's voice count fifty
    times: `per_account_item=1` keeps only an account's first feedback per item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_account: int | None = Field(None, gt=0)
    per_account_item: int | None = Field(None, gt=0)
    # No account contributes more than this share of any
    # (namespace, label) or (namespace, item) of the export (at least one item each).
    max_share: float | None = Field(None, gt=0, le=1)


def over_cap(
    caps: ExportCaps,
    row: Row,
    per_account: Counter[str],
    per_account_item: Counter[tuple[str, str]],
) -> bool:
    """Whether `row` goes over `per_account` / `per_account_item`; counts it when not."""
    account = row["account_id"]
    pair = (account, row["item_id"])
    if caps.per_account is not None and per_account[account] >= caps.per_account:
        return True
    if caps.per_account_item is not None and per_account_item[pair] >= caps.per_account_item:
        return True
    per_account[account] += 1
    per_account_item[pair] += 1
    return False


def share_cap(
    conn: sa.Connection, query: sa.Select[Any], caps: ExportCaps | None
) -> Callable[[Row], bool] | None:
    """With `caps.max_share`: a first pass counts each label's and item's rows; the
    returned test then refuses a row once its account holds `max_share` (at least one
    row) of its label or item, earliest rows kept."""
    if caps is None or caps.max_share is None:
        return None
    share = caps.max_share
    totals: Counter[tuple[str, str, str]] = Counter()
    for row in stream(conn, query):
        totals.update(_share_groups(row))
    held: Counter[tuple[str, tuple[str, str, str]]] = Counter()

    def over(row: Row) -> bool:
        groups = _share_groups(row)
        account = row["account_id"]
        if any(held[(account, g)] >= max(1, int(share * totals[g])) for g in groups):
            return True
        held.update((account, g) for g in groups)
        return False

    return over


def _share_groups(row: Row) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """The (namespace, label) and (namespace, item) an exported row counts towards."""
    value = orjson.loads(row["event"])["value"]
    label = f"{type(value).__name__}:{value!r}"
    return ("label", row["namespace"], label), ("item", row["namespace"], row["item_id"])
