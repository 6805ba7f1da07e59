"""The insert IDs stored recently, by ID whatever time their records carry, so that a retry is stored once
even when the client stamped a new time on it (the store is searched by time, which the retry changed).

Kept in memory as 64-bit hashes of (table, project, insert ID) in sorted numpy arrays, about 8 bytes per
record that arrived within the retry window (`ingest.retry_window_days`). A batch asks which of its IDs may
be stored (a binary search per array); only those few are looked up in the store, over all time, to be sure
(a hash can collide). Arrays are merged as they grow (each at most half the size of the one before, so there
are about log2(n) of them) and dropped whole once their newest record left the window.

Filled on start from the store (records that arrived in the window) and after each batch is written, in
the loader's thread: a batch the store refused is not in it, and after a crash the store is the truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Key = tuple[str, int, str]  # table (events, profile_ops, entity_ops), project, insert id
ALL_TIME_US = (-(2**53), 2**53)  # about 1685 to 2255: any time a record may carry


def _hashes(keys: Iterable[Key]) -> np.ndarray:
    return np.fromiter((hash(k) for k in keys), dtype=np.int64)


@dataclass
class _Chunk:
    hashes: np.ndarray  # sorted
    newest_us: int


class RecentIds:
    """Hashes of the insert IDs stored within the last `window_us` of arrival."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self.chunks: list[_Chunk] = []

    def __len__(self) -> int:
        return sum(len(c.hashes) for c in self.chunks)

    def add(self, keys: Sequence[Key], received_us: int) -> None:
        """Note insert IDs just stored (their records arrived by `received_us`)."""
        if not keys or self.window_us <= 0:
            return
        self.chunks.append(_Chunk(np.sort(_hashes(keys)), received_us))
        while len(self.chunks) > 1 and 2 * len(self.chunks[-1].hashes) > len(self.chunks[-2].hashes):
            newer, older = self.chunks.pop(), self.chunks.pop()
            merged = np.concatenate([older.hashes, newer.hashes])
            merged.sort(kind="stable")
            self.chunks.append(_Chunk(merged, max(older.newest_us, newer.newest_us)))
        self.prune(received_us)

    def load(self, keys: Iterable[Key], now_us: int, chunk: int = 1_000_000) -> None:
        """Note the insert IDs the store holds from the window (on start)."""
        batch: list[Key] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= chunk:
                self.add(batch, now_us)
                batch = []
        self.add(batch, now_us)

    def prune(self, now_us: int) -> None:
        """Forget arrays whose records all arrived before the window."""
        cutoff = now_us - self.window_us
        self.chunks = [c for c in self.chunks if c.newest_us >= cutoff]

    def maybe_stored(self, table: str, project_id: int, insert_ids: Sequence[str]) -> list[str]:
        """The IDs that may have been stored within the window (hash matches; the caller checks the store)."""
        if not self.chunks or not insert_ids:
            return []
        wanted = _hashes((table, project_id, i) for i in insert_ids)
        hit = np.zeros(len(wanted), dtype=bool)
        for chunk in self.chunks:
            at = np.searchsorted(chunk.hashes, wanted)
            at[at == len(chunk.hashes)] = 0
            hit |= chunk.hashes[at] == wanted
        return [i for i, h in zip(insert_ids, hit, strict=True) if h]
