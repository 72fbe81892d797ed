"""On-disk index: generations of (FAISS file, SQLite chunk table, manifest) switched atomically by CURRENT.

Layout of an index directory::

    CURRENT            name of the live generation, replaced atomically (os.replace)
    gen-000042/        manifest.json, vectors.faiss, chunks.sqlite, bm25/
    .lock              held by `wenda index` while it writes

A build writes a new generation beside the live one and switches CURRENT only when it is complete,
so a killed build leaves the previous index answering, and readers can hot-reload by watching CURRENT.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexLockedError, IndexMismatchError, IndexMissingError, WendaError
from .lexical import LexicalIndex
from .vectors import for_queries

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.sqlite"
LEXICAL = "bm25"
LOCK = ".lock"
KEEP_GENERATIONS = 2  # the live one and its predecessor, which a reader may still be opening

SCHEMA = """
CREATE TABLE files (source TEXT PRIMARY KEY, title TEXT NOT NULL, publisher TEXT, place TEXT, date TEXT,
                    encoding TEXT NOT NULL);
CREATE TABLE paragraphs (source TEXT NOT NULL, number INTEGER NOT NULL, line INTEGER NOT NULL,
                         section TEXT, text TEXT NOT NULL, PRIMARY KEY (source, number));
CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT NOT NULL, paragraph INTEGER NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
CREATE INDEX chunks_source ON chunks (source);
CREATE TABLE tokens (id INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
"""

REBUILD_HINT = "run `wenda index --rebuild`"


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk with everything needed to cite it."""

    id: int
    source: str
    line: int
    paragraph: int
    section: str | None
    title: str
    place: str | None
    publisher: str | None
    date: str | None
    start: int
    end: int
    paragraph_text: str

    @property
    def text(self) -> str:
        return self.paragraph_text[self.start : self.end]

    @property
    def embedded_text(self) -> str:
        """Exactly what was embedded and lexically indexed for this chunk."""
        return embedding_text(self.place, self.title, self.section, self.text)


def embedding_text(place: str | None, title: str, section: str | None, text: str) -> str:
    """A chunk as embedded: a context line (place, title, section) that disambiguates short passages, then its text."""
    context = " · ".join(part for part in (place, title, section) if part)
    return f"{context}\n{text}"


class Snapshot:
    """One generation opened read-only: its manifest, FAISS index and chunk table."""

    def __init__(self, path: Path, mmap: bool = True) -> None:
        self.path = path
        manifest_path = path / MANIFEST
        try:
            self.manifest: dict = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WendaError(f"index at {path} is damaged (unreadable manifest); {REBUILD_HINT}") from exc
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index at {path} has format version {self.manifest.get('format_version')}, "
                f"this Wenda reads version {FORMAT_VERSION}; {REBUILD_HINT}"
            )
        for name, size in self.manifest.get("sizes", {}).items():
            actual = (path / name).stat().st_size if (path / name).exists() else -1
            if actual != size:
                raise WendaError(f"index file {path / name} is truncated or damaged; {REBUILD_HINT}")
        try:
            # An IVF index is memory-mapped for readers: fast start, pages shared between processes.
            ivf = self.manifest.get("vector_index", {}).get("type") == "ivf-sq8"
            flags = faiss.IO_FLAG_MMAP if (mmap and ivf) else 0
            self.index = for_queries(faiss.read_index(str(path / VECTORS), flags))
            self.lexical = LexicalIndex.load(path / LEXICAL)
        except (RuntimeError, OSError, ValueError) as exc:
            raise WendaError(f"index files in {path} cannot be read ({exc}); {REBUILD_HINT}") from exc
        self.db = sqlite3.connect(f"file:{path / CHUNKS}?mode=ro", uri=True, check_same_thread=False)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine score) of the `k` nearest chunks, best first."""
        if k <= 0 or len(self) == 0:
            return []
        scores, ids = self.index.search(vector.reshape(1, -1).astype(np.float32), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def records(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Chunk records by id (ids no longer present are left out)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.source, p.line, c.paragraph, p.section, f.title, f.place, f.publisher, f.date,"
            " c.start, c.end, p.text FROM chunks c"
            " JOIN paragraphs p ON p.source = c.source AND p.number = c.paragraph"
            f" JOIN files f ON f.source = c.source WHERE c.id IN ({marks})",
            ids,
        ).fetchall()
        return {row[0]: ChunkRecord(*row) for row in rows}

    def documents(self) -> list[tuple[str, str]]:
        """(source, title) of every indexed file."""
        return self.db.execute("SELECT source, title FROM files ORDER BY source").fetchall()

    def close(self) -> None:
        self.db.close()


def live_generation(index_dir: Path) -> Path | None:
    """The generation CURRENT names, or None when no index was ever completed here."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return index_dir / name if name else None


def live_manifest(index_dir: Path) -> dict:
    """The live generation's manifest, or {} when there is none or it cannot be read."""
    path = live_generation(index_dir)
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}


def open_snapshot(index_dir: Path, mmap: bool = True) -> Snapshot:
    """Open the live generation (`mmap=False` for a writer that will change it); IndexMissingError if none."""
    path = live_generation(index_dir)
    if path is None or not path.is_dir():
        raise IndexMissingError(f"no index in {index_dir}; run `wenda index` to build one")
    return Snapshot(path, mmap)


def check_model(manifest: dict, identity: dict, serving: bool = False) -> None:
    """Refuse to mix vectors of different models (or prefixes): they would give meaningless scores. Only for
    queries (`serving`), a model that `wenda agree` measured to give the same vectors is accepted too."""
    if manifest["model"] == identity:
        return
    if serving and any(entry["model"] == identity for entry in manifest.get("servable_with", [])):
        return
    built, wanted = manifest["model"], identity
    raise IndexMismatchError(
        f"the index was built with {built['name']} (dim {built['dim']}), but the configured model is "
        f"{wanted['name']} (dim {wanted['dim']}); {REBUILD_HINT}, set WENDA_EMBEDDING_MODEL back, or, to serve it "
        "with the configured model, check that their vectors agree with `wenda agree`"
    )


def write_manifest(generation: Path, manifest: dict) -> None:
    """Replace a generation's manifest atomically (used to record a model agreement)."""
    tmp = generation / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, generation / MANIFEST)


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock on the index directory; a second writer is refused with a clear message."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(
                f"another `wenda index` is writing {index_dir}; wait for it to finish and try again"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_generation(index_dir: Path, previous: Snapshot | None) -> tuple[Path, sqlite3.Connection]:
    """A fresh temporary generation folder with a chunk table copied from `previous` (or empty)."""
    for stale in index_dir.glob("gen-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed build; the lock says nobody owns it
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    path = index_dir / f"gen-{max(numbers, default=0) + 1:06d}.tmp"
    path.mkdir()
    db = sqlite3.connect(path / CHUNKS)
    if previous is None:
        db.executescript(SCHEMA)
    else:
        previous.db.backup(db)
    return path, db


def commit_generation(
    tmp: Path, db: sqlite3.Connection, index: faiss.Index, lexical: LexicalIndex, manifest: dict
) -> Path:
    """Write vectors, BM25 and manifest, make everything durable, then switch CURRENT to the new generation."""
    db.commit()
    db.close()
    faiss.write_index(index, str(tmp / VECTORS))
    lexical.save(tmp / LEXICAL)
    files = [p for p in sorted(tmp.rglob("*")) if p.is_file()]
    manifest = dict(manifest, sizes={p.relative_to(tmp).as_posix(): p.stat().st_size for p in files})
    write_manifest(tmp, manifest)
    for path in [*files, tmp / LEXICAL]:
        _fsync(path)
    final = tmp.with_suffix("")
    tmp.rename(final)
    index_dir = final.parent
    pointer = index_dir / (CURRENT + ".tmp")
    pointer.write_text(final.name + "\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync(index_dir)
    _prune(index_dir)
    return final


def _prune(index_dir: Path) -> None:
    generations = sorted(p for p in index_dir.glob("gen-*") if p.name[4:].isdigit())
    for old in generations[:-KEEP_GENERATIONS]:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
