"""The recent window of label feedback the consistency analyser works on.

Per batch, every label or correction is appended to a capped Redis list of compact
JSON rows (one pipelined round trip, trimmed to `consistency.recent.max_events`):
who said what about which item when, what the model had said, and the features when
the product sent them. The analyser loads it into numpy arrays (`Recent`), adds each
event's current status from its record, and runs kNN re-checks, trigger discovery,
outliers and drift on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import redis

from feedbackguard import keys
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.graph.window import value_key
from feedbackguard.pipeline import ledger

_STATUS_CHUNK = 2000


def row_of(event: FeedbackEvent, max_features: int = 4096) -> list[Any]:
    """[event_id, account, item, time, value key, value, model key, model confidence,
    features, account created]."""
    out = event.model_output
    created = event.account_created_at
    features = event.payload.features if event.payload is not None else None
    if features is not None and len(features) > max_features:
        features = None
    return [
        event.event_id,
        event.account_id,
        event.item_id,
        event.received_at.timestamp(),
        value_key(event.value),
        str(event.value),
        None if out is None else value_key(out.label),
        None if out is None else out.confidence,
        features,
        None if created is None else created.timestamp(),
    ]


def append(
    pipe: redis.client.Pipeline[bytes],
    namespace: str,
    events: Sequence[FeedbackEvent],
    max_events: int,
    max_features: int = 4096,
) -> None:
    """Queue on `pipe` the rows of the batch's label feedback, capping the window."""
    rows = [orjson.dumps(row_of(e, max_features)) for e in events if e.kind in LABEL_KINDS]
    if rows:
        pipe.rpush(keys.recent(namespace), *rows)
        pipe.ltrim(keys.recent(namespace), -max_events, -1)


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Recent:
    """The window as arrays, one entry per event (each event id once)."""

    event_ids: tuple[str, ...]
    accounts: tuple[str, ...]
    items: tuple[str, ...]
    time: FloatArray
    values: tuple[str, ...]  # value keys
    labels: tuple[str, ...]  # values as shown
    model: tuple[str | None, ...]  # model label keys
    confidence: FloatArray  # 0 when no model output
    features: tuple[list[float] | None, ...]
    created: FloatArray  # NaN when unknown
    statuses: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.event_ids)

    def with_statuses(self, statuses: Sequence[str]) -> Recent:
        return Recent(**{**self.__dict__, "statuses": tuple(statuses)})

    def flips(self, min_confidence: float) -> npt.NDArray[np.bool_]:
        """Events whose value contradicts a model output of at least `min_confidence`."""
        return np.array(
            [m is not None and m != v for m, v in zip(self.model, self.values, strict=True)],
            dtype=bool,
        ) & (self.confidence >= min_confidence)

    def feature_matrix(self) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """(indices of events with features of the most common length, their matrix)."""
        lengths = [len(f) if f else 0 for f in self.features]
        counts = np.bincount(np.asarray(lengths, dtype=np.int64)) if lengths else np.zeros(1)
        counts[0] = 0
        if not counts.any():
            return np.empty(0, dtype=np.int64), np.empty((0, 0))
        width = int(np.argmax(counts))
        rows = np.flatnonzero(np.asarray(lengths) == width)
        matrix = np.array([self.features[i] for i in rows.tolist()], dtype=np.float64)
        return rows, matrix


def load(r: redis.Redis[bytes], namespace: str) -> Recent:
    """The window, duplicates of redelivered batches dropped (first row kept)."""
    return _window(orjson.loads(raw) for raw in r.lrange(keys.recent(namespace), 0, -1))


class RowCache:
    """Decoded rows of the recent window kept by a worker between analysis runs: the
    list only gains rows at its tail and loses them at its head (RPUSH, LTRIM), so a
    run decodes only the rows it has not seen (decoding every row, features and all,
    at every run was most of loading). A row is found by its stored bytes, so what
    `load` returns is what decoding them all gives."""

    def __init__(self) -> None:
        self.decoded: dict[str, dict[bytes, list[Any]]] = {}

    def load(self, r: redis.Redis[bytes], namespace: str) -> Recent:
        """What `load` returns, decoding only new rows."""
        known = self.decoded.get(namespace, {})
        kept: dict[bytes, list[Any]] = {}
        for raw in r.lrange(keys.recent(namespace), 0, -1):
            row = known.get(raw)
            kept[raw] = orjson.loads(raw) if row is None else row
        self.decoded[namespace] = kept
        return _window(kept.values())


def _window(decoded: Iterable[list[Any]]) -> Recent:
    """The window of decoded rows (list order), each event id once (the first row)."""
    seen: set[str] = set()
    rows: list[list[Any]] = []
    for row in decoded:
        if row[0] not in seen:
            seen.add(row[0])
            rows.append(row)
    return Recent(
        event_ids=tuple(row[0] for row in rows),
        accounts=tuple(row[1] for row in rows),
        items=tuple(row[2] for row in rows),
        time=np.array([row[3] for row in rows], dtype=np.float64),
        values=tuple(row[4] for row in rows),
        labels=tuple(row[5] for row in rows),
        model=tuple(row[6] for row in rows),
        confidence=np.array([row[7] or 0.0 for row in rows], dtype=np.float64),
        features=tuple(row[8] for row in rows),
        created=np.array([np.nan if row[9] is None else row[9] for row in rows]),
    )


def statuses(r: redis.Redis[bytes], namespace: str, event_ids: Sequence[str]) -> list[str]:
    """Each event's current status ("missing" once its record expired)."""
    out: list[str] = []
    for start in range(0, len(event_ids), _STATUS_CHUNK):
        chunk = event_ids[start : start + _STATUS_CHUNK]
        for raw in r.mget([keys.record(namespace, e) for e in chunk]):
            out.append(ledger.last_status(raw) if raw else "missing")
    return out
