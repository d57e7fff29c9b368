"""Verifying the whole store: every signature, and every version's counts and set
digest, so rows deleted or renumbered under a version are found, not only rows altered."""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.store import signing
from feedbackguard.store.queries import stream
from feedbackguard.store.rows import (
    DIGEST_MODULUS,
    Row,
    item_message,
    member_hash,
    tombstone_message,
    version_message,
)
from feedbackguard.store.schema import items, tombstones, versions_table

MAX_REPORTED_PROBLEMS = 1000  # verify lists at most this many (it counts all)


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)

    table: Literal["items", "tombstones", "versions"]
    id: int
    event_id: str | None = None
    problem: str


class VerifyReport(BaseModel):
    """What `Store.verify` found; `ok` when nothing."""

    model_config = ConfigDict(frozen=True)

    items_checked: int
    tombstones_checked: int
    versions_checked: int
    problems_total: int
    problems: list[Problem] = Field(description=f"the first {MAX_REPORTED_PROBLEMS}")

    @property
    def ok(self) -> bool:
        return self.problems_total == 0


def verify_store(conn: sa.Connection, key: bytes) -> VerifyReport:
    """Check every signature, and every version's counts and set digest, in one
    read transaction.

    Finds rows and tombstones altered or inserted outside feedbackguard (bad or
    missing signature), and rows deleted or renumbered under an existing version.
    """
    problems: list[Problem] = []
    total = 0

    def found(problem: Problem) -> None:
        nonlocal total
        total += 1
        if len(problems) < MAX_REPORTED_PROBLEMS:
            problems.append(problem)

    version_rows = [
        dict(r._mapping)
        for r in conn.execute(sa.select(versions_table).order_by(versions_table.c.version))
    ]
    for vrow in version_rows:
        if not signing.verify(key, version_message(vrow), vrow["signature"]):
            found(Problem(table="versions", id=vrow["version"], problem=_bad(vrow)))
    # One pass over the items: signatures, and each row's count and digest
    # contribution to the first version whose watermark covers it (bucketed,
    # then summed up per version, so the pass costs O(rows log versions)).
    watermarks = [v["watermark"] for v in version_rows]
    bucket_rows = [0] * (len(version_rows) + 1)
    bucket_sums = [0] * (len(version_rows) + 1)
    n_items = 0
    for row in stream(conn, sa.select(items).order_by(items.c.id)):
        n_items += 1
        if not signing.verify(key, item_message(row), row["signature"]):
            found(Problem(table="items", id=row["id"], event_id=row["event_id"], problem=_bad(row)))
        bucket = bisect.bisect_left(watermarks, row["id"])
        bucket_rows[bucket] += 1
        bucket_sums[bucket] += member_hash(key, row["event_id"])
    rows_below = list(itertools.accumulate(bucket_rows))
    sums = [total % DIGEST_MODULUS for total in itertools.accumulate(bucket_sums)]
    n_tombstones = 0
    per_version: Counter[int] = Counter()
    for row in stream(conn, sa.select(tombstones).order_by(tombstones.c.id)):
        n_tombstones += 1
        per_version[row["version"]] += 1
        if not signing.verify(key, tombstone_message(row), row["signature"]):
            found(
                Problem(
                    table="tombstones", id=row["id"], event_id=row["event_id"], problem=_bad(row)
                )
            )
    running = 0
    for index, vrow in enumerate(version_rows):
        running += per_version.get(vrow["version"], 0)
        if rows_below[index] != vrow["rows"] or f"{sums[index]:064x}" != vrow["members"]:
            found(
                Problem(
                    table="versions",
                    id=vrow["version"],
                    problem=(
                        f"holds {rows_below[index]} rows, signed for {vrow['rows']}, or "
                        "other ones: rows were deleted or renumbered outside feedbackguard"
                    ),
                )
            )
        if running != vrow["tombstones"]:
            found(
                Problem(
                    table="versions",
                    id=vrow["version"],
                    problem=(
                        f"{running} tombstones in effect, signed for {vrow['tombstones']}: "
                        "tombstones were deleted or moved outside feedbackguard"
                    ),
                )
            )
    return VerifyReport(
        items_checked=n_items,
        tombstones_checked=n_tombstones,
        versions_checked=len(version_rows),
        problems_total=total,
        problems=problems,
    )


def _bad(row: Row) -> str:
    if not row["signature"]:
        return "missing signature: written outside feedbackguard"
    return "bad signature: changed or written outside feedbackguard"
