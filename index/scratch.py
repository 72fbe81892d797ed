"""What a build keeps on disk instead of in memory: the new chunks' texts and the vectors of the index to write.

At a million chunks the texts were ~1 GB as Python strings and the vectors 1.5 GB, held two or three times over
while the vector index was built; here a build holds a batch of each (bench/million.py measures the peak).
Both live in a scratch folder inside the generation being written, removed before it is committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class PendingTexts:
    """The texts to embed of a build's new chunks, by chunk id, in a scratch SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")  # scratch: a crash discards the whole generation anyway
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        self.db.execute("BEGIN")
        self.count = 0

    def add(self, chunk_id: int, text: str) -> None:
        self.db.execute("INSERT INTO texts VALUES (?, ?)", (chunk_id, text))
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def batches(self, size: int) -> Iterator[tuple[list[int], list[str]]]:
        """(ids, texts) of at most `size` chunks at a time, in id order."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        last = -1
        while True:
            query = "SELECT id, text FROM texts WHERE id > ? ORDER BY id LIMIT ?"
            rows = self.db.execute(query, (last, size)).fetchall()
            if not rows:
                return
            ids, texts = zip(*rows, strict=True)
            yield list(ids), list(texts)
            last = ids[-1]

    def texts(self, ids: list[int]) -> list[str]:
        """The texts of these chunk ids, in their order."""
        found = dict(self.db.execute(f"SELECT id, text FROM texts WHERE id IN ({','.join('?' * len(ids))})", ids))
        return [found[i] for i in ids]

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)


class VectorFile:
    """Vectors with their chunk ids, appended in blocks to a raw float32 file and read back a block at a time."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim = path, dim
        self.file = open(path, "w+b")  # noqa: SIM115 - closed by close()
        self.ids: list[np.ndarray] = []
        self.count = 0

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.ids.append(np.asarray(ids, dtype=np.int64))
        self.count += len(ids)

    def __len__(self) -> int:
        return self.count

    def all_ids(self) -> np.ndarray:
        return np.concatenate(self.ids) if self.ids else np.zeros(0, dtype=np.int64)

    def read(self, begin: int, end: int) -> np.ndarray:
        """Rows begin … end − 1."""
        self.file.flush()
        self.file.seek(4 * self.dim * begin)
        data = np.frombuffer(self.file.read(4 * self.dim * (end - begin)), dtype=np.float32)
        return data.reshape(end - begin, self.dim)

    def blocks(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of `size` rows at a time, in the order they were appended."""
        ids = self.all_ids()
        for begin in range(0, self.count, size):
            end = min(begin + size, self.count)
            yield ids[begin:end], self.read(begin, end)

    def rows(self, positions: np.ndarray, size: int = 16_384) -> np.ndarray:
        """The vectors at these row positions, in their order: the file is read a block at a time into the
        result, so memory holds the result and one block."""
        order = np.argsort(positions)
        ordered = positions[order]
        result = np.empty((len(positions), self.dim), dtype=np.float32)
        for begin in range(0, self.count, size):
            first, last = np.searchsorted(ordered, [begin, begin + size])
            if last > first:
                block = self.read(begin, min(begin + size, self.count))
                result[order[first:last]] = block[ordered[first:last] - begin]
        return result

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
