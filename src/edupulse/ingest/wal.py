"""Write-ahead log: accepted records are appended and fsynced before the request is acknowledged.

Many concurrent requests share one fsync (group commit). Frames are `<length u32><crc32 u32><payload>`;
a torn frame at the tail (a crash mid-write) fails its checksum and is cut off on open. A position
is "segment:offset" of the next frame; the loader stores the position it has applied in the same
transaction as the data, so replay after a crash applies every frame exactly once.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("<II")
MAX_FRAME = 256 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def parse(cls, text: str | None) -> Position:
        if not text:
            return cls(0, 0)
        segment, offset = text.split(":")
        return cls(int(segment), int(offset))


class WalClosedError(RuntimeError):
    pass


def _segment_name(number: int) -> str:
    return f"{number:012d}.wal"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _valid_length(path: Path) -> int:
    """Bytes of whole, checksum-valid frames at the start of a segment file."""
    good = 0
    with path.open("rb") as f:
        while True:
            header = f.read(HEADER.size)
            if len(header) < HEADER.size:
                return good
            length, crc = HEADER.unpack(header)
            if length > MAX_FRAME:
                return good
            payload = f.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return good
            good += HEADER.size + length


class WriteAheadLog:
    """Append-only segment files under one directory, with a group-commit writer thread."""

    def __init__(self, directory: Path | str, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Condition()
        self._pending: list[tuple[bytes, Future[Position]]] = []
        self._closed = True
        self._thread: threading.Thread | None = None
        self._fd = -1
        self.durable = Position(0, 0)
        self.durable_changed = threading.Condition()
        self.fsyncs = 0  # since this process opened the log: group commit shows as frames_written / fsyncs
        self.frames_written = 0

    # lifecycle ----------------------------------------------------------------------------------

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        segments = self.segments()
        if segments:
            last = segments[-1]
            path = self.dir / _segment_name(last)
            valid = _valid_length(path)
            if valid < path.stat().st_size:
                with path.open("r+b") as f:
                    f.truncate(valid)
                    f.flush()
                    os.fsync(f.fileno())
            self._segment, self._offset = last, valid
        else:
            self._segment, self._offset = 1, 0
        self._fd = os.open(self.dir / _segment_name(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(self.dir)
        self.durable = Position(self._segment, self._offset)
        if self._offset == 0:  # nothing in the segment yet: what is durable ends where the one before ends
            before = self.dir / _segment_name(self._segment - 1)
            self.durable = Position(self._segment - 1, before.stat().st_size) if before.exists() else Position(0, 0)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.wal") if p.stem.isdigit())

    # appending ----------------------------------------------------------------------------------

    def submit(self, payload: bytes) -> Future[Position]:
        """Queue a frame; the future resolves once it is on disk (fsynced)."""
        future: Future[Position] = Future()
        with self._lock:
            if self._closed:
                raise WalClosedError("the write-ahead log is closed")
            self._pending.append((payload, future))
            self._lock.notify()
        return future

    def append(self, payload: bytes) -> Position:
        """Append a frame and wait until it is durable."""
        return self.submit(payload).result()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._lock.wait()
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
            try:
                end = self._write(batch)
            except BaseException as exc:  # the clients must hear of it; nothing was acknowledged
                for _, future in batch:
                    future.set_exception(exc)
                continue
            with self.durable_changed:
                self.durable = end
                self.durable_changed.notify_all()
            for _, future in batch:
                future.set_result(end)

    def _write(self, batch: list[tuple[bytes, Future[Position]]]) -> Position:
        chunks = []
        for payload, _ in batch:
            chunks.append(HEADER.pack(len(payload), zlib.crc32(payload)))
            chunks.append(payload)
        data = b"".join(chunks)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.fsyncs += 1
        self.frames_written += len(batch)
        self._offset += len(data)
        # The end of the last frame written; after a roll the next frames start a new segment, which
        # readers reach by themselves, so the durable mark never points at a position with nothing before it.
        end = Position(self._segment, self._offset)
        if self._offset >= self.segment_bytes:
            self._roll()
        return end

    def _roll(self) -> None:
        os.close(self._fd)
        self._segment += 1
        self._offset = 0
        self._fd = os.open(self.dir / _segment_name(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(self.dir)

    # reading ------------------------------------------------------------------------------------

    def read(
        self, start: Position, until: Position | None = None, max_bytes: int = 64 * 1024 * 1024
    ) -> Iterator[tuple[Position, bytes]]:
        """Frames from `start` up to `until` (default: what is durable); yields (position after, payload)."""
        until = until or self.durable
        position = start
        read_bytes = 0
        for segment in self.segments():
            if segment < position.segment:
                continue
            offset = position.offset if segment == position.segment else 0
            path = self.dir / _segment_name(segment)
            with path.open("rb") as f:
                f.seek(offset)
                while segment < until.segment or offset < until.offset:
                    header = f.read(HEADER.size)
                    if len(header) < HEADER.size:
                        break
                    length, crc = HEADER.unpack(header)
                    payload = f.read(length)
                    if len(payload) < length or zlib.crc32(payload) != crc:
                        break
                    offset += HEADER.size + length
                    read_bytes += HEADER.size + length
                    yield Position(segment, offset), payload
                    if read_bytes >= max_bytes:
                        return
            if segment >= until.segment:
                return
            position = Position(segment + 1, 0)

    def release(self, applied: Position) -> None:
        """Delete segments wholly before the applied position."""
        for segment in self.segments():
            if segment < applied.segment:
                (self.dir / _segment_name(segment)).unlink(missing_ok=True)
