"""Content-addressed embedding cache: a chunk whose embedded text did not change is never embedded again.

It lives outside the index generations (one SQLite file per cache folder), is written after every
batch, and so also lets an interrupted build resume where it stopped. Every row carries a checksum of
its model, key and vector: a damaged row is dropped and embedded again, never reused, and a vector
whose norm is not 1 (every Wenda embedder normalizes) is treated the same way. A cache SQLite cannot
read at all is replaced by an empty one: it only holds what can be recomputed.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import xxhash

from .errors import WendaError

NORM_TOLERANCE = 1e-3
FULL_BYTES = 4 << 20  # less than this free, and an I/O error is almost surely a full disk
DAMAGE = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def disk_full(folder: Path) -> bool:
    """Nearly no space left where `folder` lives: SQLite reports a full disk as a generic I/O error at times."""
    try:
        return shutil.disk_usage(folder).free < FULL_BYTES
    except OSError:
        return False


def is_damage(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file itself is damaged (as opposed to locked, full or read-only)."""
    return getattr(exc, "sqlite_errorname", "") in DAMAGE or "malformed" in str(exc)


def row_checksum(model: str, key: bytes, vector: bytes) -> bytes:
    return xxhash.xxh3_64_digest(model.encode("utf-8") + key + vector)


def row_intact(model: str, key: bytes, vector: bytes, checksum: bytes | None) -> bool:
    """A row is usable when its checksum matches (or it predates checksums) and it holds a unit vector."""
    if len(vector) % 4:
        return False
    if checksum is not None and checksum != row_checksum(model, key, vector):
        return False
    return abs(float(np.linalg.norm(np.frombuffer(vector, dtype=np.float32))) - 1.0) <= NORM_TOLERANCE


class EmbeddingCache:
    """Vectors by (model name, sha256 of the embedded text), each with a checksum."""

    def __init__(self, path: Path, model: str, dim: int) -> None:
        self.path = path
        self.model = model
        self.dim = dim
        self.dropped = 0  # damaged rows found (and deleted) by `get`
        self.repaired: str | None = None  # what was done about a damaged cache file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except sqlite3.Error as exc:
            self._recover(exc)
        except OSError as exc:
            raise WendaError(f"cannot open the embedding cache {path} ({exc.strerror})") from exc

    def _open(self) -> None:
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB, checksum BLOB,"
            " PRIMARY KEY (model, key))"
        )
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(vectors)")]
        if "checksum" not in columns:  # caches written before checksums: rows without one are norm-checked only
            self.db.execute("ALTER TABLE vectors ADD COLUMN checksum BLOB")

    def _recover(self, exc: sqlite3.Error) -> None:
        """Replace a damaged cache file by an empty one; anything else is the user's to fix."""
        if not is_damage(exc):
            advice = "; the disk is full: free some space and try again" if disk_full(self.path.parent) else ""
            raise WendaError(f"cannot use the embedding cache {self.path} ({exc}){advice}") from exc
        if getattr(self, "db", None) is not None:
            self.db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._open()
        self.repaired = f"the embedding cache {self.path} was damaged ({exc}): replaced by an empty one"

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Cached intact vectors by position in `texts`; damaged rows are deleted and left out."""
        try:
            return self._get(texts)
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return {}

    def _get(self, texts: list[str]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for position, text in enumerate(texts):
            key = self.key(text)
            row = self.db.execute(
                "SELECT vector, checksum FROM vectors WHERE model = ? AND key = ?", (self.model, key)
            ).fetchone()
            if row is None or len(row[0]) != 4 * self.dim:  # another dimension: another model's, not damage
                continue
            if row_intact(self.model, key, row[0], row[1]):
                found[position] = np.frombuffer(row[0], dtype=np.float32)
            else:
                self.db.execute("DELETE FROM vectors WHERE model = ? AND key = ?", (self.model, key))
                self.db.commit()
                self.dropped += 1
        return found

    def missing(self, texts: list[str], step: int = 512) -> list[int]:
        """Positions of the texts without an intact vector here (damaged rows are dropped on the way)."""
        positions: list[int] = []
        for begin in range(0, len(texts), step):
            part = texts[begin : begin + step]
            found = self.get(part)
            positions += [begin + i for i in range(len(part)) if i not in found]
        return positions

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            key, blob = self.key(text), np.asarray(vector, dtype=np.float32).tobytes()
            rows.append((self.model, key, blob, row_checksum(self.model, key, blob)))
        try:
            self._insert(rows)
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            self._insert(rows)

    def _insert(self, rows: list[tuple]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def check_cache(path: Path) -> tuple[int, int]:
    """(rows, damaged rows) over every model's rows, read-only, for `wenda index --check`; sqlite3.DatabaseError
    when the file itself is damaged."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = db.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0][0]}")
        columns = [row[1] for row in db.execute("PRAGMA table_info(vectors)")]
        checksum = "checksum" if "checksum" in columns else "NULL"
        rows = damaged = 0
        for row in db.execute(f"SELECT model, key, vector, {checksum} FROM vectors"):
            rows += 1
            damaged += not row_intact(*row)
        return rows, damaged
    finally:
        db.close()
