"""Export files: JSONL or Parquet, written beside the target and renamed into place
only when complete.

The temporary file is made with `mkstemp` in the target's directory (a fresh random
name, `O_EXCL`, mode 0600) and written through that descriptor, so a file or symlink
planted beside the target in a shared directory is never opened or followed; the
final `os.replace` swaps the name itself (a symlink at the target is replaced, not
followed)."""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Literal

from feedbackguard.store.errors import StoreError
from feedbackguard.store.queries import STREAM_BATCH
from feedbackguard.store.rows import Row, aware

ExportFormat = Literal["jsonl", "parquet"]

# JSON leaves these characters unescaped, but str.splitlines() and some JSONL readers
# break lines on them; exported lines escape them so one item is always one line.
_LINE_BREAKERS = (
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
)


def private_temp(path: Path) -> tuple[Path, IO[bytes]]:
    """A new temporary file beside `path` (random name, created exclusively, 0600)
    and its open binary handle."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    return Path(name), os.fdopen(fd, "wb")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a private temporary file renamed into place."""
    partial, handle = private_temp(path)
    try:
        with handle:
            handle.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class Writer:
    """Writes export rows to a private temporary file beside `path`; `finish` renames
    it into place, `abort` removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial, self._handle = private_temp(path)

    def write(self, row: Row) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            self.close()
        finally:
            self.partial.unlink(missing_ok=True)


def open_writer(path: Path, fmt: ExportFormat) -> Writer:
    """A writer of `fmt` for `path`; `StoreError` when Parquet is asked without pyarrow."""
    if fmt == "jsonl":
        return _JsonlWriter(path)
    if fmt == "parquet":
        try:
            importlib.import_module("pyarrow.parquet")
        except ImportError as exc:
            raise StoreError(
                "Parquet export needs pyarrow: pip install 'feedbackguard[parquet]'"
            ) from exc
        return _ParquetWriter(path)
    raise ValueError(f"unknown export format {fmt!r} (jsonl or parquet)")


def jsonl_line(row: Row) -> bytes:
    """One exported item as a JSONL line: its seq, event and decision trail."""
    line = b'{"seq":%d,"event":%s,"decisions":%s}\n' % (
        row["id"],
        row["event"].encode(),
        row["decisions"].encode(),
    )
    for raw, escaped in _LINE_BREAKERS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line


class _JsonlWriter(Writer):
    def write(self, row: Row) -> None:
        self._handle.write(jsonl_line(row))

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class _ParquetWriter(Writer):
    """Columns: seq, the event's identifying fields, and the event / decisions as JSON."""

    COLUMNS = ("seq", "event_id", "namespace", "kind", "account_id", "item_id", "received_at")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
        pa = self._pa
        self._schema = pa.schema(
            [
                ("seq", pa.int64()),
                ("event_id", pa.string()),
                ("namespace", pa.string()),
                ("kind", pa.string()),
                ("account_id", pa.string()),
                ("item_id", pa.string()),
                ("received_at", pa.timestamp("us", tz="UTC")),
                ("event", pa.string()),
                ("decisions", pa.string()),
            ]
        )
        self._writer = pq.ParquetWriter(self._handle, self._schema)
        self._buffer: list[dict[str, Any]] = []
        self._closed = False

    def write(self, row: Row) -> None:
        self._buffer.append(
            {
                "seq": row["id"],
                "event_id": row["event_id"],
                "namespace": row["namespace"],
                "kind": row["kind"],
                "account_id": row["account_id"],
                "item_id": row["item_id"],
                "received_at": aware(row["received_at"]),
                "event": row["event"],
                "decisions": row["decisions"],
            }
        )
        if len(self._buffer) >= STREAM_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            table = self._pa.Table.from_pylist(self._buffer, schema=self._schema)
            self._writer.write_table(table)
            self._buffer = []

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            try:
                self._writer.close()
            finally:
                self._handle.close()
