"""Content-addressed embedding cache: a chunk whose embedded text did not change is never embedded again.

It lives outside the index generations (one SQLite file per cache folder), is written after every
batch, and so also lets an interrupted build resume where it stopped.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np


class EmbeddingCache:
    """Vectors by (model name, sha256 of the embedded text)."""

    def __init__(self, path: Path, model: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB, PRIMARY KEY (model, key))"
        )
        self.model = model
        self.dim = dim

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Cached vectors by position in `texts`."""
        found: dict[int, np.ndarray] = {}
        for position, text in enumerate(texts):
            row = self.db.execute(
                "SELECT vector FROM vectors WHERE model = ? AND key = ?", (self.model, self.key(text))
            ).fetchone()
            if row is not None and len(row[0]) == 4 * self.dim:
                found[position] = np.frombuffer(row[0], dtype=np.float32)
        return found

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
            [
                (self.model, self.key(text), np.asarray(vector, dtype=np.float32).tobytes())
                for text, vector in zip(texts, vectors, strict=True)
            ],
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()
