"""On-disk index: generations of (FAISS file, SQLite chunk table, manifest) switched atomically by CURRENT.

Layout of an index directory::

    CURRENT            name of the live generation, replaced atomically (os.replace)
    gen-000042/        manifest.json, vectors.faiss, chunks.sqlite, bm25/
    .lock              held by `wenda index` while it writes

A build writes a new generation beside the live one and switches CURRENT only when it is complete,
so a killed build leaves the previous index answering, and readers can hot-reload by watching CURRENT.
The manifest holds a checksum of every other file and of itself; a reader verifies them all before it
answers (xxh3-128: 31 ms warm for the 189 MB of a 92k-chunk generation, docs/benchmarks.md) and falls
back to the previous intact generation when the live one is damaged.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import xxhash

from . import ivf_file
from .errors import (
    DamagedIndexError,
    IndexFormatError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    WendaError,
)
from .lexical import ARRAY_FILES, IDS_FILE, LexicalIndex
from .mapped import drop_pages
from .sources import is_identifier
from .vectors import for_queries, is_ivf

# 3: checksums of every file; 4: document formats, locators, urls; 5: English words stemmed; 6: declared fields
FORMAT_VERSION = 6
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.sqlite"
LEXICAL = "bm25"
LOCK = ".lock"
KEEP_GENERATIONS = 2  # the live one and its predecessor, which a reader may still be opening

SCHEMA = """
CREATE TABLE files (source TEXT PRIMARY KEY, title TEXT NOT NULL, publisher TEXT, place TEXT, date TEXT,
                    encoding TEXT NOT NULL, format TEXT NOT NULL, url TEXT, extra TEXT);
CREATE TABLE paragraphs (source TEXT NOT NULL, number INTEGER NOT NULL, line INTEGER NOT NULL,
                         section TEXT, text TEXT NOT NULL, lines INTEGER NOT NULL, locator TEXT,
                         PRIMARY KEY (source, number));
CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT NOT NULL, paragraph INTEGER NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
CREATE INDEX chunks_source ON chunks (source);
CREATE TABLE tokens (id INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
"""

REBUILD_HINT = "run `wenda index --rebuild`"
GENERATION = re.compile(r"gen-\d{6}")
# A cosine of unit vectors lies in [-1, 1]; 8-bit codes (IVF-SQ8) may overshoot by about 0.01.
MAX_SIMILARITY = 1.05


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk with everything needed to cite it. `line` is in the extracted text of the unit that
    `where` names ({"page": 3}, {"chapter": 2}; {} for a document read as one flow), which may add a table
    row or footnote ({"table": 1, "row": 4})."""

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
    lines: int = 1
    locator_json: str | None = None
    url: str | None = None
    format: str = "text"
    extra_json: str | None = None  # declared tags and fields (index/metadata.py), JSON

    @property
    def extra(self) -> dict:
        return json.loads(self.extra_json) if self.extra_json else {}

    @property
    def text(self) -> str:
        return self.paragraph_text[self.start : self.end]

    @property
    def embedded_text(self) -> str:
        """Exactly what was embedded and lexically indexed for this chunk."""
        return embedding_text(self.place, self.title, self.section, self.text)

    @property
    def where(self) -> dict:
        return json.loads(self.locator_json) if self.locator_json else {}

    @property
    def locator(self) -> str:
        """The passage's place in its file as `wenda show` takes it: "12" (line), "p3:12" (page 3, line 12),
        "c2:5" (chapter 2, line 5)."""
        where = self.where
        for key, letter in UNIT_LETTERS.items():
            if key in where:
                return f"{letter}{where[key]}:{self.line}"
        return str(self.line)


UNIT_LETTERS = {"page": "p", "chapter": "c"}


def embedding_text(place: str | None, title: str, section: str | None, text: str) -> str:
    """A chunk as embedded: a context line (place, title, section) that disambiguates short passages, then its
    text. A title that is only a file name's digits and digests is left out: it would blur every vector."""
    named = None if is_identifier(title) else title
    context = " · ".join(part for part in (place, named, section) if part)
    return f"{context}\n{text}"


def file_checksum(path: Path) -> str:
    """xxh3-128 of a file's bytes, read in blocks (a fast non-cryptographic hash: this guards against damage,
    not against someone who can write the index folder anyway)."""
    digest = xxhash.xxh3_128()
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


MANIFEST_SEAL = b',\n "checksum": "'  # the manifest's last field: xxh3-128 of every byte before it


def seal(manifest: dict) -> bytes:
    """The manifest as written: indented JSON whose last field is the checksum of the bytes before it: readers
    hash the bytes as read, not a canonical re-serialization (0.19 s at 92k files, docs/benchmarks.md)."""
    body = json.dumps({k: v for k, v in manifest.items() if k != "checksum"}, ensure_ascii=False, indent=1)
    data = body.removesuffix("\n}").encode("utf-8")
    return data + MANIFEST_SEAL + xxhash.xxh3_128(data).hexdigest().encode() + b'"\n}'


def sealed(data: bytes) -> bool:
    """True when the manifest bytes `data` match the checksum they end with."""
    cut = data.rfind(MANIFEST_SEAL)
    start = cut + len(MANIFEST_SEAL)
    return cut > 0 and data[start : start + 32] == xxhash.xxh3_128(data[:cut]).hexdigest().encode()


def read_manifest(path: Path) -> dict:
    """A generation's manifest after checking its own checksum; DamagedIndexError naming the file if not."""
    file = path / MANIFEST
    try:
        data = file.read_bytes()
        manifest = json.loads(data.decode("utf-8"))
    except FileNotFoundError as exc:
        raise DamagedIndexError(f"{file} is missing") from exc
    except (OSError, ValueError) as exc:
        raise DamagedIndexError(f"{file} is damaged (not readable JSON)") from exc
    if not isinstance(manifest, dict):
        raise DamagedIndexError(f"{file} is damaged (not a manifest)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"index at {path} has format version {version}, this Wenda reads version {FORMAT_VERSION}; "
            "run `wenda index` to upgrade it (vectors come from the embedding cache)"
        )
    if not sealed(data):
        raise DamagedIndexError(f"{file} is damaged (checksum mismatch)")
    return manifest


def verify_files(path: Path, manifest: dict) -> None:
    """Check every file the manifest lists, size first then checksum; DamagedIndexError naming the first bad one."""
    for name, expected in manifest["checksums"].items():
        file = path / name
        try:
            size = file.stat().st_size
            problem = (
                f"{size} bytes, expected {manifest['sizes'][name]}"
                if size != manifest["sizes"][name]
                else "checksum mismatch"
                if file_checksum(file) != expected
                else None
            )
        except FileNotFoundError:
            problem = "missing"
        except OSError as exc:
            problem = f"unreadable: {exc.strerror}"
        if problem:
            raise DamagedIndexError(f"index file {file} is damaged ({problem})")


class Snapshot:
    """One generation opened read-only: its manifest, FAISS index and chunk table, verified before use."""

    problem: str | None = None  # set when this is a fallback for a damaged live generation

    def __init__(self, path: Path, mmap: bool = True, verify: bool = True) -> None:
        self.path = path
        self.manifest: dict = read_manifest(path)
        if verify:
            verify_files(path, self.manifest)
        try:
            # A large (IVF) index is memory-mapped for readers: fast start, pages shared between processes, and a
            # question reads only the lists it needs. Its BM25 arrays are memory-mapped for builds too, which
            # never read them (an update of a million chunks would load a gigabyte).
            ivf = self.manifest.get("vector_index", {}).get("type") == "ivf-sq8"
            self.mapped = mmap and ivf  # its files memory-mapped, not read into memory
            flags = faiss.IO_FLAG_MMAP if self.mapped else 0
            self.index = for_queries(faiss.read_index(str(path / VECTORS), flags))
            self.lexical = LexicalIndex.load(path / LEXICAL, mmap=ivf)
            positions = ivf_file.positions_path(path / VECTORS)
            # where each id lies in the IVF lists (an index written before them has faiss's own map of ids)
            self.positions = np.load(positions, mmap_mode="r" if mmap else None) if positions.exists() else None
            self.db = sqlite3.connect(f"file:{path / CHUNKS}?mode=ro", uri=True, check_same_thread=False)
            chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        except (RuntimeError, OSError, ValueError, sqlite3.DatabaseError) as exc:
            raise DamagedIndexError(f"index files in {path} cannot be read ({exc})") from exc
        if not self.index.ntotal == chunks == len(self.lexical.ids) == self.manifest["chunks"]:
            raise DamagedIndexError(
                f"index files in {path} disagree on the number of chunks ({self.index.ntotal} vectors, {chunks} rows, "
                f"{len(self.lexical.ids)} BM25 documents, {self.manifest['chunks']} in the manifest)"
            )

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunk ids (IVF-SQ8: decoded from 8 bits); KeyError or RuntimeError for an id
        the index does not hold."""
        if self.positions is not None:
            return ivf_file.reconstruct(self.index, self.positions, ids)
        if not len(ids):
            return np.zeros((0, self.index.d), np.float32)
        return np.stack([self.index.reconstruct(int(i)) for i in ids])

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine score) of the `k` nearest chunks, best first, among the chunk ids `allowed` when
        given (a filter applied inside the search, so k of them come back when that many exist); a cosine out
        of range means damage."""
        if k <= 0 or len(self) == 0 or (allowed is not None and len(allowed) == 0):
            return []
        query = vector.reshape(1, -1).astype(np.float32)
        if allowed is None:
            scores, ids = self.index.search(query, min(k, len(self)))
        else:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if is_ivf(self.index):
                ivf = faiss.downcast_index(self.index)
                params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
            scores, ids = self.index.search(query, min(k, len(allowed)), params=params)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]  # -1: no more hits
        worst = max((abs(score) for _, score in found), default=0.0)
        if worst > MAX_SIMILARITY:
            raise DamagedIndexError(f"index file {self.path / VECTORS} is damaged (a similarity of {worst:.3f})")
        return found

    def records(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Chunk records by id (ids no longer present are left out)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        try:
            rows = self.db.execute(
                "SELECT c.id, c.source, p.line, c.paragraph, p.section, f.title, f.place, f.publisher, f.date,"
                " c.start, c.end, p.text, p.lines, p.locator, f.url, f.format, f.extra FROM chunks c"
                " JOIN paragraphs p ON p.source = c.source AND p.number = c.paragraph"
                f" JOIN files f ON f.source = c.source WHERE c.id IN ({marks})",
                ids,
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DamagedIndexError(f"index file {self.path / CHUNKS} is damaged ({exc})") from exc
        return {row[0]: ChunkRecord(*row) for row in rows}

    def documents(self) -> list[tuple[str, str]]:
        """(source, title) of every indexed file."""
        return self.db.execute("SELECT source, title FROM files ORDER BY source").fetchall()

    def catalogue(self) -> list[dict]:
        """Every indexed file by source: its metadata (source, title, publisher, place, date, url, format, and
        the tags and fields declared for it) and its passage count."""
        names = ("source", "title", "publisher", "place", "date", "url", "format", "passages")
        rows = self.db.execute(
            "SELECT f.source, f.title, f.publisher, f.place, f.date, f.url, f.format, COUNT(c.id), f.extra FROM files f"
            " LEFT JOIN chunks c ON c.source = f.source GROUP BY f.source ORDER BY f.source"
        )
        return [{**json.loads(row[-1] or "{}"), **dict(zip(names, row[:-1], strict=True))} for row in rows]

    def account(self) -> list[dict]:
        """Every corpus file the last build saw, by source (`account_entry`): indexed, with its passages, pages
        and how it was read, or skipped, with the reason."""
        read = self.manifest.get("read", {})
        rows = self.db.execute(
            "SELECT f.source, COUNT(c.id) FROM files f LEFT JOIN chunks c ON c.source = f.source GROUP BY f.source"
        )
        found = [
            account_entry(
                source,
                "indexed",
                passages,
                read.get(source, {}).get("pages"),
                read.get(source, {}).get("ocr"),
                notes=read.get(source, {}).get("notes"),
            )
            for source, passages in rows
        ]
        found += [
            account_entry(source, "skipped", reason=entry.get("reason", ""))
            for source, entry in self.manifest.get("skipped", {}).items()
        ]
        return sorted(found, key=lambda entry: entry["source"])

    def places(self) -> list[str]:
        """The distinct `place` metadata of the indexed files (sources.toml), for follow-up questions."""
        return [row[0] for row in self.db.execute("SELECT DISTINCT place FROM files WHERE place IS NOT NULL")]

    def drop_pages(self) -> None:
        """Let go of the pages of the memory-mapped files read so far (`mapped.drop_pages`): after each of many
        searches made at build time (the self-calibration), so that a build does not look as if it held the index."""
        if self.mapped:
            lexical = [self.path / LEXICAL / name for name in (*ARRAY_FILES.values(), IDS_FILE)]
            drop_pages(self.path / VECTORS, ivf_file.positions_path(self.path / VECTORS), *lexical)

    def close(self) -> None:
        self.db.close()


def account_entry(
    source: str,
    status: str,
    passages: int = 0,
    pages: int | None = None,
    read: str | None = None,
    reason: str | None = None,
    notes: list[str] | None = None,
) -> dict:
    """One file of the build account: `status` "indexed", "skipped" or "pending"; `read` says how an indexed
    file was read ("text", "ocr" or "both"), `ocr` whether any of its text came from OCR, `notes` what its reader
    left out or mended (an undefined entity in a Word file)."""
    how = (read or "text") if status == "indexed" else None
    ocr = how in ("ocr", "both")
    return {
        "source": source,
        "status": status,
        "passages": passages,
        "pages": pages,
        "read": how,
        "ocr": ocr,
        "reason": reason,
        "notes": notes or [],
    }


def generations(index_dir: Path) -> list[Path]:
    """Completed generation folders, newest first."""
    return sorted((p for p in index_dir.glob("gen-*") if GENERATION.fullmatch(p.name) and p.is_dir()), reverse=True)


def read_current(index_dir: Path) -> bytes | None:
    """CURRENT's raw bytes (None when there is none): what readers compare to notice a switch."""
    try:
        return (index_dir / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedIndexError(f"cannot read {index_dir / CURRENT} ({exc.strerror})") from exc


def live_generation(index_dir: Path) -> Path | None:
    """The generation CURRENT names, or None when no index was ever completed here; DamagedIndexError when
    CURRENT does not name an existing generation."""
    raw = read_current(index_dir)
    if raw is None:
        if generations(index_dir):
            raise DamagedIndexError(f"{index_dir / CURRENT} is missing")
        return None
    name = raw.decode("ascii", "replace").strip()
    if not GENERATION.fullmatch(name):
        raise DamagedIndexError(f"{index_dir / CURRENT} is damaged (it should name a generation)")
    if not (index_dir / name).is_dir():
        raise DamagedIndexError(f"{index_dir / CURRENT} names {name}, which is missing")
    return index_dir / name


def live_manifest(index_dir: Path) -> dict:
    """The live generation's manifest, or {} when there is none or it cannot be read."""
    try:
        path = live_generation(index_dir)
        return read_manifest(path) if path else {}
    except WendaError:
        return {}


def open_snapshot(index_dir: Path, mmap: bool = True, fallback: bool = True) -> Snapshot:
    """Open and verify the live generation (`mmap=False` for a writer that will change it). When it is damaged
    and `fallback`, the newest intact older generation is opened instead, with `problem` saying why."""
    try:
        path = live_generation(index_dir)
    except DamagedIndexError as exc:
        path, problem = None, exc
    else:
        if path is None:
            raise IndexMissingError(f"no index in {index_dir}; run `wenda index` to build one")
        try:
            return Snapshot(path, mmap)
        except DamagedIndexError as exc:
            problem = exc
    if fallback:
        for older in generations(index_dir):
            if older != path and (path is None or older.name < path.name):
                try:
                    snapshot = Snapshot(older, mmap)
                except (DamagedIndexError, IndexMismatchError):
                    continue
                snapshot.problem = problem.what
                return snapshot
    raise problem


def check_model(manifest: dict, identity: dict, serving: bool = False) -> None:
    """Refuse to mix vectors of different models (or prefixes): they would give meaningless scores. Only for
    queries (`serving`), a model that `wenda agree` measured to give the same vectors is accepted too."""
    if manifest["model"] == identity:
        return
    if serving and any(entry["model"] == identity for entry in manifest.get("servable_with", [])):
        return
    built, wanted = manifest["model"], identity
    if "HashEmbedder" in (built.get("backend"), wanted.get("backend")):
        raise IndexMismatchError(
            f"the index was built with {built['name']}, but the configured model is {wanted['name']}: the hash "
            "embedder is a model-free test tool whose vectors mean nothing to a real model (nor a real model's to "
            "it); point WENDA_INDEX_DIR at an index built with the same embedder, or set WENDA_EMBEDDER to match"
        )
    raise IndexMismatchError(
        f"the index was built with {built['name']} (dim {built['dim']}), but the configured model is "
        f"{wanted['name']} (dim {wanted['dim']}); {REBUILD_HINT}, set WENDA_EMBEDDING_MODEL back, or, to serve it "
        "with the configured model, check that their vectors agree with `wenda agree`"
    )


def write_manifest(generation: Path, manifest: dict) -> None:
    """Replace a generation's manifest atomically (used to record a model agreement)."""
    tmp = generation / (MANIFEST + ".tmp")
    tmp.write_bytes(seal(manifest))
    _fsync(tmp)
    os.replace(tmp, generation / MANIFEST)


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock on the index directory; a second writer is refused with a clear message."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / LOCK, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise unwritable(index_dir, exc) from exc
    with handle:
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


def unwritable(index_dir: Path, exc: OSError) -> WendaError:
    """The message for an index folder Wenda may not write (read-only file system, permissions)."""
    why = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "permission denied"}.get(
        exc.errno, exc.strerror or str(exc)
    )
    return WendaError(
        f"cannot write the index folder {index_dir}: {why}; run `wenda index` as a user who may write it, "
        "or point WENDA_INDEX_DIR (--index-dir) at a writable folder"
    )


def leftovers(index_dir: Path) -> list[Path]:
    """Temporary files and folders of interrupted writes (only safe to remove under the write lock)."""
    return sorted([*index_dir.glob("gen-*.tmp"), *index_dir.glob(CURRENT + ".tmp")])


def remove_leftovers(index_dir: Path) -> None:
    for path in leftovers(index_dir):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def new_generation(index_dir: Path, previous: Snapshot | None) -> tuple[Path, sqlite3.Connection]:
    """A fresh temporary generation folder with a chunk table copied from `previous` (or empty). Its number is
    above every name ever used here, damaged folders included, so a reader never sees a name come back."""
    numbers = [int(p.name[4:10]) for p in index_dir.glob("gen-*") if p.name[4:10].isdigit()]
    path = index_dir / f"gen-{max(numbers, default=0) + 1:06d}.tmp"
    path.mkdir()
    db = sqlite3.connect(path / CHUNKS)
    if previous is None:
        db.executescript(SCHEMA)
    else:
        previous.db.backup(db)
    return path, db


def commit_generation(tmp: Path, db: sqlite3.Connection, index: faiss.Index, manifest: dict) -> Path:
    """Write vectors (unless an IVF index was written there list by list already) and manifest (with checksums of
    all files, BM25's written before), make everything durable, then switch CURRENT."""
    db.commit()
    db.close()
    if not (tmp / VECTORS).exists():
        faiss.write_index(index, str(tmp / VECTORS))
    files = [p for p in sorted(tmp.rglob("*")) if p.is_file()]
    for path in [*files, tmp / LEXICAL]:
        _fsync(path)  # durable before their checksums are: a crash never leaves a manifest vouching for lost data
    names = {p.relative_to(tmp).as_posix(): p for p in files}
    manifest = dict(
        manifest,
        chunks=int(index.ntotal),
        sizes={name: p.stat().st_size for name, p in names.items()},
        checksums={name: file_checksum(p) for name, p in names.items()},
    )
    write_manifest(tmp, manifest)
    final = tmp.with_suffix("")
    tmp.rename(final)
    switch_current(final.parent, final)
    return final


def switch_current(index_dir: Path, generation: Path) -> None:
    """Point CURRENT at `generation` atomically and durably."""
    pointer = index_dir / (CURRENT + ".tmp")
    pointer.write_text(generation.name + "\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync(index_dir)


def prune(index_dir: Path, keep: set[Path] | None = None) -> None:
    """Remove old generations: all but `keep` after a repair, else all but the KEEP_GENERATIONS newest."""
    found = generations(index_dir)
    for old in found[KEEP_GENERATIONS:] if keep is None else [g for g in found if g not in keep]:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
