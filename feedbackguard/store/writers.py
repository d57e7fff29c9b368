"""Export files: JSONL or Parquet (the file's suffix says which), written beside the
target and renamed into place only when complete.

The temporary file is made with `mkstemp` in the target's directory (a fresh random
name, `O_EXCL`, mode 0600) and written through that descriptor, so a file or symlink
planted beside the target in a shared directory is never opened or followed; the
final `os.replace` swaps the name itself (a symlink at the target is replaced, not
followed)."""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from feedbackguard.store.errors import StoreError
from feedbackguard.store.flat import Column
from feedbackguard.store.queries import STREAM_BATCH

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

    def write(self, record: Mapping[str, Any]) -> None:
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


SUFFIXES: dict[str, ExportFormat] = {".jsonl": "jsonl", ".parquet": "parquet"}


def format_of(path: Path) -> ExportFormat:
    """The format a file name asks for: its suffix, `.jsonl` or `.parquet`; anything
    else is refused, so a file's name never lies about what it holds."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise StoreError(
            f"cannot tell the export format from {path.name!r}: name the file *.jsonl or *.parquet"
        )
    return fmt


def open_writer(path: Path, columns: Sequence[Column]) -> Writer:
    """A writer of the format `path`'s suffix names; `StoreError` for another suffix,
    or when Parquet is asked without pyarrow."""
    if format_of(path) == "jsonl":
        return _JsonlWriter(path)
    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise StoreError(
            "Parquet export needs pyarrow: pip install 'feedbackguard[parquet]'"
        ) from exc
    return _ParquetWriter(path, columns)


def jsonl_line(record: Mapping[str, Any]) -> bytes:
    """One export row as a JSONL line (datetimes as RFC 3339 text)."""
    line = orjson.dumps(record) + b"\n"
    for raw, escaped in _LINE_BREAKERS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line


class _JsonlWriter(Writer):
    def write(self, record: Mapping[str, Any]) -> None:
        self._handle.write(jsonl_line(record))

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class _ParquetWriter(Writer):
    """The export's columns with their Arrow types (features as list<float64>)."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        super().__init__(path)
        self._pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
        pa = self._pa
        types = {
            "string": pa.string(),
            "int64": pa.int64(),
            "float64": pa.float64(),
            "timestamp": pa.timestamp("us", tz="UTC"),
            "list<float64>": pa.list_(pa.float64()),
        }
        self._schema = pa.schema([(c.name, types[c.type]) for c in columns])
        self._writer = pq.ParquetWriter(self._handle, self._schema)
        self._buffer: list[Mapping[str, Any]] = []
        self._closed = False

    def write(self, record: Mapping[str, Any]) -> None:
        self._buffer.append(record)
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


def count_rows(path: Path) -> int:
    """The rows an export file holds (JSONL: lines; Parquet: its metadata)."""
    if format_of(path) == "jsonl":
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    pq = importlib.import_module("pyarrow.parquet")
    rows: int = pq.ParquetFile(path).metadata.num_rows
    return rows
