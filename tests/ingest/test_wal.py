"""The write-ahead log: frames come back as written, a torn or corrupt tail is cut on open, segments roll
and are released, and concurrent appenders share fsyncs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edupulse.conf import Settings
from edupulse.ingest.wal import HEADER, Position, WriteAheadLog
from edupulse.runtime import Platform

START = Position(0, 0)


def frames(wal: WriteAheadLog, start: Position = START) -> list[bytes]:
    return [payload for _, payload in wal.read(start)]


def test_append_and_read_back(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.open()
    try:
        positions = [wal.append(f"frame {i}".encode()) for i in range(5)]
        assert positions == sorted(positions)
        assert wal.durable == positions[-1]
        assert frames(wal) == [f"frame {i}".encode() for i in range(5)]
        assert frames(wal, positions[2]) == [b"frame 3", b"frame 4"]
        assert Position.parse(str(positions[3])) == positions[3]
        assert Position.parse(None) == Position(0, 0)
    finally:
        wal.close()


def test_torn_tail_is_cut_and_earlier_frames_survive(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.open()
    for i in range(3):
        wal.append(f"frame {i}".encode() * 10)
    wal.close()
    [segment] = sorted((tmp_path / "wal").glob("*.wal"))
    whole = segment.stat().st_size
    with segment.open("ab") as f:  # a crash in the middle of writing a frame
        f.write(HEADER.pack(1000, 12345) + b"partial")
    reopened = WriteAheadLog(tmp_path / "wal")
    reopened.open()
    try:
        assert segment.stat().st_size == whole
        assert len(frames(reopened)) == 3
        reopened.append(b"after the crash")
        assert frames(reopened)[-1] == b"after the crash"
    finally:
        reopened.close()


def test_corrupt_frame_ends_the_log_there(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.open()
    first = wal.append(b"a" * 100)
    wal.append(b"b" * 100)
    wal.close()
    [segment] = sorted((tmp_path / "wal").glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[first.offset + HEADER.size + 10] ^= 0xFF  # flip a bit of the second frame: its checksum fails
    segment.write_bytes(bytes(data))
    reopened = WriteAheadLog(tmp_path / "wal")
    reopened.open()
    try:
        assert frames(reopened) == [b"a" * 100]
    finally:
        reopened.close()


def test_segments_roll_and_are_released(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal", segment_bytes=1000)
    wal.open()
    try:
        positions = [wal.append(bytes([i % 256]) * 300) for i in range(10)]
        assert len(wal.segments()) >= 3
        assert len(frames(wal)) == 10
        middle = positions[5]
        wal.release(middle)
        assert min(wal.segments()) == middle.segment
        assert len(frames(wal, middle)) == 4
    finally:
        wal.close()


def test_concurrent_appenders_share_fsyncs(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.open()
    results: dict[bytes, Position] = {}
    lock = threading.Lock()

    def append(n: int) -> None:
        for i in range(50):
            payload = f"{n}-{i}".encode()
            position = wal.append(payload)
            with lock:
                results[payload] = position

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(results) == 400
        assert sorted(frames(wal)) == sorted(results)
        assert wal.frames_written == 400
        assert wal.fsyncs <= 400
        # each acknowledged position is at or before what is durable
        assert all(p <= wal.durable for p in results.values())
    finally:
        wal.close()


def test_durable_mark_of_a_log_with_nothing_new_is_where_its_frames_end(tmp_path: Path) -> None:
    """Opened with nothing in its last segment (a new log, or one that rolled just before it was closed), the
    log's durable mark is where its frames end, which a loader that read them all has reached: waiting for it
    (Platform.flush) returns at once instead of never."""
    fresh = WriteAheadLog(tmp_path / "fresh")
    fresh.open()
    try:
        assert fresh.durable == START
        assert frames(fresh, START) == []
    finally:
        fresh.close()
    wal = WriteAheadLog(tmp_path / "wal", segment_bytes=100)
    wal.open()
    last = [wal.append(b"x" * 120) for _ in range(2)][-1]  # each frame fills a segment: the log rolls after it
    wal.close()
    assert len(wal.segments()) == 3
    wal.open()
    try:
        assert wal.durable == last
        assert frames(wal, last) == []
        assert wal.append(b"next") > last
        assert frames(wal, last) == [b"next"]
    finally:
        wal.close()


def test_an_empty_platform_flushes_at_once(tmp_path: Path) -> None:
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        started = time.monotonic()
        platform.flush(timeout=30)
        assert time.monotonic() - started < 5
