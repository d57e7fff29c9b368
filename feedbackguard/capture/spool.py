"""The local spool: where captured events wait while Redis is unreachable.

The spool is one append-only file of JSON lines (one `FeedbackEvent.to_json()` per
line), shared by every process of a host (several gunicorn workers): each append
takes an exclusive `flock` on a sibling lock file, writes one whole line with
O_APPEND and fsyncs before it returns, so an event the product was told nothing
about is on disk, not in a page cache. The file is bounded by `spool_max_bytes`:
past it appends are refused, counted and logged as errors, never dropped silently.

Replay is crash-safe and loses nothing. Under the lock, the spool is renamed to
`<spool>.replaying` (new appends start a fresh spool); the replaying file is then
sent to the inbox in batches, under the inbox cap, by the inbox writer capture uses
(feedbackguard/inbox_writer.py), and after each batch the byte offset reached is
recorded (fsync'd) in `<spool>.replaying.offset`; the file is deleted at the end. A
replay that dies resumes from the recorded offset, so at most the one batch in
flight when it died is sent twice (workers dedupe on event_id).
Lines that are not valid events (a torn write from a crash) are moved to
`<spool>.bad` and counted, so they cannot poison the inbox nor block the replay.

An event whose write to Redis failed after it was sent (a timeout) may have landed
anyway. Its line starts with `?` and its replayed inbox entry carries `u`, so the
worker knows a first copy may exist (pipeline/inbox.py; the pipeline's late-copy rule).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydantic
import redis

from feedbackguard import inbox_writer
from feedbackguard.events import FeedbackEvent

log = logging.getLogger(__name__)

_NEWLINE = b"\n"
_UNSURE_MARK = b"?"


@dataclass(frozen=True)
class _Line:
    data: bytes
    end: int
    """Byte offset just past the line in its file."""


@dataclass(frozen=True)
class _Spooled:
    namespace: str
    raw: bytes
    unsure: bool
    index: int
    """Position of its line in the batch read."""


_FILE_MODE = 0o600


class SpoolFullError(Exception):
    """The spool reached `spool_max_bytes`; the event was not written."""


@dataclass(frozen=True)
class SpoolStatus:
    """What waits on disk: the spool proper and an interrupted replay, if any."""

    path: Path
    spooled_bytes: int
    spooled_events: int
    replaying_bytes: int
    replaying_events: int
    bad_events: int
    max_bytes: int

    @property
    def pending_events(self) -> int:
        return self.spooled_events + self.replaying_events


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did. `busy` means another process was already replaying."""

    replayed: int = 0
    bad: int = 0
    busy: bool = False
    full: bool = False
    """Stopped because an inbox reached its cap; the rest waits for the next replay."""


class Spool:
    """One spool file and its siblings (lock, replaying, offset, bad)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.replay_lock_path = self.path.with_name(self.path.name + ".replay.lock")
        self.replaying_path = self.path.with_name(self.path.name + ".replaying")
        self.offset_path = self.path.with_name(self.path.name + ".replaying.offset")
        self.bad_path = self.path.with_name(self.path.name + ".bad")
        self.refused = 0
        """Appends this process refused because the spool was full."""

    # -- writing ---------------------------------------------------------------

    def append(self, raw_event: bytes) -> None:
        """Append one event's JSON durably; raise SpoolFullError past the bound."""
        self.append_many([raw_event])

    def append_many(self, raw_events: list[bytes], *, unsure: bool = False) -> None:
        """Append events durably in one locked write; all or none are written.
        `unsure`: a write of these events failed after it was sent (see above)."""
        mark = _UNSURE_MARK if unsure else b""
        data = b"".join(mark + raw + _NEWLINE for raw in raw_events)
        with self._locked(self.lock_path):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, _FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                if size + self._size(self.replaying_path) + len(data) > self.max_bytes:
                    self._refuse(len(raw_events))
                if size and not _ends_with_newline(fd, size):
                    data = _NEWLINE + data  # seal a torn line left by a crash
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _refuse(self, count: int) -> None:
        self.refused += count
        log.error(
            "feedbackguard spool %s is full (spool_max_bytes=%d): %d event(s) refused, "
            "%d refused by this process so far",
            self.path,
            self.max_bytes,
            count,
            self.refused,
        )
        raise SpoolFullError(f"spool {self.path} is full ({self.max_bytes} bytes)")

    # -- reading ---------------------------------------------------------------

    def has_pending(self) -> bool:
        """Cheap check (two stats) used by the background retry loop."""
        return self._size(self.path) > 0 or self.replaying_path.exists()

    def status(self) -> SpoolStatus:
        return SpoolStatus(
            path=self.path,
            spooled_bytes=self._size(self.path),
            spooled_events=_count_lines(self.path),
            replaying_bytes=self._size(self.replaying_path),
            replaying_events=_count_lines(self.replaying_path, start=self._offset()),
            bad_events=_count_lines(self.bad_path),
            max_bytes=self.max_bytes,
        )

    # -- replay ----------------------------------------------------------------

    def replay(self, r: redis.Redis[bytes], *, cap: int, batch: int) -> ReplayResult:
        """Send everything spooled to the inbox streams; at most one replayer at a time.

        Stops early (`full`) at the first event whose inbox holds `cap` undecided
        events, so a replay never buries workers that are already behind; that event
        and the rest wait for the next replay. Raises redis errors
        when Redis fails mid-way: what was sent stays sent, the rest stays on disk for
        the next attempt.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._try_locked(self.replay_lock_path) as acquired:
            if not acquired:
                return ReplayResult(busy=True)
            first = self._replay_file(r, cap, batch)
            if first.full or not self._claim_spool():
                return first
            second = self._replay_file(r, cap, batch)
            return ReplayResult(
                replayed=first.replayed + second.replayed,
                bad=first.bad + second.bad,
                full=second.full,
            )

    def _claim_spool(self) -> bool:
        """Move the spool aside for replay (writers then start a fresh file)."""
        with self._locked(self.lock_path):
            if self._size(self.path) == 0:
                return False
            os.replace(self.path, self.replaying_path)
            self.offset_path.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)
            return True

    def _replay_file(self, r: redis.Redis[bytes], cap: int, batch: int) -> ReplayResult:
        if not self.replaying_path.exists():
            return ReplayResult()
        replayed = bad = 0
        for lines in self._batches(self._offset(), batch):
            good, invalid = _split_valid(lines)
            appended = _append_capped(r, good, cap)
            replayed += appended
            full = appended < len(good)
            # Done with: every line before the first event the cap refused.
            done = good[appended].index if full else len(lines)
            unreadable = [lines[i].data for i in invalid if i < done]
            if unreadable:
                self._quarantine(unreadable)
                bad += len(unreadable)
            if done:
                self._save_offset(lines[done - 1].end)
            if full:
                return ReplayResult(replayed=replayed, bad=bad, full=True)
        self.replaying_path.unlink()
        self.offset_path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        return ReplayResult(replayed=replayed, bad=bad)

    def _batches(self, start: int, size: int) -> Iterator[list[_Line]]:
        """Non-blank lines of the replaying file from byte `start`, `size` at a time."""
        with self.replaying_path.open("rb") as f:
            f.seek(start)
            chunk: list[_Line] = []
            for line in f:
                if line.strip():
                    chunk.append(_Line(line.rstrip(_NEWLINE), f.tell()))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    def _offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            os.write(fd, str(offset).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.offset_path)

    def _quarantine(self, lines: list[bytes]) -> None:
        log.error(
            "feedbackguard spool: %d unreadable line(s) moved to %s", len(lines), self.bad_path
        )
        with self.bad_path.open("ab") as f:
            f.write(b"".join(line + _NEWLINE for line in lines))
            f.flush()
            os.fsync(f.fileno())

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def _try_locked(self, path: Path) -> Iterator[bool]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == _NEWLINE


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink durable (the directory entry itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_lines(path: Path, start: int = 0) -> int:
    try:
        with path.open("rb") as f:
            f.seek(start)
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def _split_valid(lines: list[_Line]) -> tuple[list[_Spooled], list[int]]:
    """The lines that are valid events, and the positions of those that are not."""
    good: list[_Spooled] = []
    invalid: list[int] = []
    for index, line in enumerate(lines):
        unsure = line.data.startswith(_UNSURE_MARK)
        raw = line.data[len(_UNSURE_MARK) :] if unsure else line.data
        try:
            good.append(_Spooled(FeedbackEvent.from_json(raw).namespace, raw, unsure, index))
        except pydantic.ValidationError:
            invalid.append(index)
    return good, invalid


def _append_capped(r: redis.Redis[bytes], events: list[_Spooled], cap: int) -> int:
    """Append events in order under their inboxes' cap, one round trip per run of one
    namespace and flag; stop at the first event the cap refuses. Returns how many
    were appended."""
    appended = 0
    for (namespace, unsure), run in itertools.groupby(events, lambda e: (e.namespace, e.unsure)):
        raws = [event.raw for event in run]
        pipe = r.pipeline(transaction=False)
        inbox_writer.queue_add(pipe, namespace, raws, cap=cap, unsure=unsure)
        added = int(pipe.execute()[0][0])
        appended += added
        if added < len(raws):
            break
    return appended
