"""Verifying the whole store: one walk along its hash chain.

The entries of the three tables are read merged in chain order (by position). Each
must sit at the next position, and its signature must be the link over its content,
its position and the previous entry's signature; each version's signed counts must be
what the chain before it adds up to; the heads kept outside the database must be on
the chain. So an entry changed, deleted, moved, inserted or renumbered is found, and
so are entries cut off the end of the chain when a head kept outside shows them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.store import signing
from feedbackguard.store.queries import EventKey, stream
from feedbackguard.store.rows import (
    GENESIS,
    Head,
    Row,
    item_message,
    link_message,
    tombstone_message,
    version_message,
)
from feedbackguard.store.schema import items, tombstones, versions_table

MAX_REPORTED_PROBLEMS = 1000  # verify lists at most this many (it counts all)
SUMMARY_PROBLEMS = 3  # problems named in an error message

Table = Literal["items", "tombstones", "versions", "chain", "head"]


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)

    table: Table = Field(description="the entry's table; chain: a position; head: an outside head")
    id: int = Field(description="row or tombstone id, version number, or chain position")
    event_id: str | None = None
    problem: str

    def line(self) -> str:
        return f"{self.table} {self.id}: {self.problem}"


class VerifyReport(BaseModel):
    """What `Store.verify` found; `ok` when nothing."""

    model_config = ConfigDict(frozen=True)

    items_checked: int
    tombstones_checked: int
    versions_checked: int
    head_position: int = Field(description="position of the chain's newest entry")
    head_digest: str = Field(description="its signature: the digest of the whole chain")
    heads_checked: list[str] = Field(description="heads kept outside compared with the chain")
    problems_total: int
    problems: list[Problem] = Field(description=f"the first {MAX_REPORTED_PROBLEMS}")

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    @property
    def head(self) -> Head:
        return Head(self.head_position, self.head_digest)

    def summary(self) -> str:
        """The first few problems, for an error message."""
        shown = "; ".join(p.line() for p in self.problems[:SUMMARY_PROBLEMS])
        more = self.problems_total - min(len(self.problems), SUMMARY_PROBLEMS)
        return shown + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Expected:
    """A head kept outside the database (None: none is kept there), which the chain
    must hold, and where it was kept."""

    source: str
    head: Head | None


Kind = Literal["items", "tombstones", "versions"]
_MESSAGES = {"items": item_message, "tombstones": tombstone_message, "versions": version_message}


def verify_store(
    conn: sa.Connection, key: bytes, expected: Sequence[Expected], *, outside: bool
) -> VerifyReport:
    """Walk the chain in one read transaction (see the module's docstring). `outside`
    says whether the store keeps its head outside; then a non-empty chain whose head
    was never published is a problem too."""
    walk = _Walk(key)
    walk.wanted = {e.head.position for e in expected if e.head is not None}
    for position, kind, row in _entries(conn):
        walk.entry(position, kind, row)
    walk.finish()
    checked = walk.compare(expected, outside)
    return VerifyReport(
        items_checked=walk.counts["items"],
        tombstones_checked=walk.counts["tombstones"],
        versions_checked=walk.counts["versions"],
        head_position=walk.position,
        head_digest=walk.previous,
        heads_checked=checked,
        problems_total=walk.total,
        problems=walk.problems,
    )


def _entries(conn: sa.Connection) -> Iterator[tuple[int, Kind, Row]]:
    """Every chained entry, in chain order."""

    def tagged(table: sa.Table, kind: Kind) -> Iterator[tuple[int, Kind, Row]]:
        for row in stream(conn, sa.select(table).order_by(table.c.position)):
            yield row["position"], kind, row

    return heapq.merge(
        tagged(items, "items"),
        tagged(tombstones, "tombstones"),
        tagged(versions_table, "versions"),
        key=lambda entry: entry[0],
    )


class _Walk:
    """The state of one walk along the chain: the last link, what the entries so far
    add up to, and the problems found."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.problems: list[Problem] = []
        self.total = 0
        self.counts = {"items": 0, "tombstones": 0, "versions": 0}
        self.position = 0
        self.previous = GENESIS
        self.digests = {0: GENESIS}  # signatures at the positions asked about
        self.wanted: set[int] = set()
        self.last_item_id = 0
        self.last_tombstone_id = 0
        self.last_version = 0
        self.quarantined: set[EventKey] = set()
        self.since_version = 0  # tombstones since the last version

    def found(self, table: Table, id: int, problem: str, event_id: str | None = None) -> None:
        self.total += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(Problem(table=table, id=id, event_id=event_id, problem=problem))

    def entry(self, position: int, kind: Kind, row: Row) -> None:
        self.counts[kind] += 1
        expected = self.position + 1
        if position > expected:
            self.found(
                "chain",
                expected,
                f"positions {expected} to {position - 1} are missing: "
                "entries were deleted outside feedbackguard",
            )
        elif position < expected:
            self.found("chain", position, "position held twice: an entry was written outside")
        ident = row["version"] if kind == "versions" else row["id"]
        event_id = None if kind == "versions" else row["event_id"]
        message = link_message(position, self.previous, _MESSAGES[kind](row))
        if not signing.verify(self.key, message, row["signature"]):
            self.found(kind, ident, _bad(row), event_id)
        if kind == "items":
            self._item(row)
        elif kind == "tombstones":
            self._tombstone(row)
        else:
            self._version(row)
        self.position = max(self.position, position)
        self.previous = row["signature"] or ""
        if position in self.wanted:
            self.digests[position] = self.previous

    def _item(self, row: Row) -> None:
        if row["id"] <= self.last_item_id:
            self.found("items", row["id"], "row id out of order", row["event_id"])
        self.last_item_id = max(self.last_item_id, row["id"])

    def _tombstone(self, row: Row) -> None:
        if row["id"] <= self.last_tombstone_id:
            self.found("tombstones", row["id"], "tombstone id out of order", row["event_id"])
        self.last_tombstone_id = max(self.last_tombstone_id, row["id"])
        if row["version"] != self.last_version + 1:
            self.found(
                "tombstones",
                row["id"],
                f"belongs to version {row['version']} but stands before version "
                f"{self.last_version + 1}",
                row["event_id"],
            )
        key = (row["namespace"], row["event_id"])
        if row["action"] == "quarantine":
            self.quarantined.add(key)
        else:
            self.quarantined.discard(key)
        self.since_version += 1

    def _version(self, row: Row) -> None:
        number = row["version"]
        if number != self.last_version + 1:
            self.found("versions", number, f"follows version {self.last_version}")
        held = {
            "watermark": self.last_item_id,
            "rows": self.counts["items"],
            "quarantined": len(self.quarantined),
            "tombstones": self.counts["tombstones"],
            "changed": self.since_version,
        }
        signed = {name: row[name] for name in held}
        if signed != held:
            self.found(
                "versions",
                number,
                f"signed for {_counts(signed)} but the chain before it holds "
                f"{_counts(held)}: entries were deleted, moved or added outside feedbackguard",
            )
        self.last_version = number
        self.since_version = 0

    def finish(self) -> None:
        if self.since_version:
            self.found(
                "versions",
                self.last_version + 1,
                f"missing: {self.since_version} tombstone(s) of version "
                f"{self.last_version + 1} stand at the end of the chain without it: "
                "the version was deleted outside feedbackguard",
            )

    def compare(self, expected: Sequence[Expected], outside: bool) -> list[str]:
        """Problems for heads kept outside that the chain does not hold; returns where
        the heads compared were kept. Called once `entry` saw every entry, `wanted`
        having named their positions beforehand."""
        checked = []
        for source in expected:
            head = source.head
            if head is None:
                if outside and self.position:
                    self.found(
                        "head",
                        0,
                        f"no chain head kept in {source.source} for this store, which holds "
                        f"{self.position} entries: it was deleted, or Redis lost its data "
                        "(`feedbackguard store init --adopt-head` once the store is checked)",
                    )
                continue
            checked.append(source.source)
            if head.position > self.position:
                self.found(
                    "head",
                    head.position,
                    f"{source.source} names the chain head at position {head.position}, but "
                    f"the chain ends at {self.position}: its newest entries were cut off",
                )
            elif self.digests.get(head.position) != head.digest:
                self.found(
                    "head",
                    head.position,
                    f"{source.source} names another entry at position {head.position} than "
                    "the chain holds: entries were cut off and written again, or replaced",
                )
        return checked


def _counts(values: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def _bad(row: Row) -> str:
    if not row["signature"]:
        return "missing signature: written outside feedbackguard"
    return (
        "signature does not verify: the entry was changed, moved or written outside "
        "feedbackguard, or the entry before it was"
    )
