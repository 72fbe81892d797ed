"""Find corpus files, fingerprint them and pick their reader; the text is extracted only when it is indexed."""

from __future__ import annotations

import hashlib
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .formats import Extraction, SkippedFile
from .metadata import is_sidecar

# A bigger file is almost always a dump, an archive or a log, and would take hours to embed on a small CPU box.
MAX_FILE_BYTES = int(os.environ.get("WENDA_MAX_FILE_MB", "20")) * 1024 * 1024


OUT_OF_MEMORY = "reading it needed more memory than allowed (set WENDA_READ_MEMORY_MB)"


@dataclass(frozen=True)
class Document:
    """A corpus file as found: `source` is its path relative to the corpus root, with '/'; `reader` names its
    format. Only this is kept for every file, so a big folder never has all its text in memory at once."""

    source: str
    sha256: str
    reader: str
    path: Path | None = None
    stat: tuple[int, int] | None = None  # (size, mtime_ns) of the file read, to notice later edits cheaply
    text: str | None = None  # the text itself, for passages given as text rather than files (benchmarks)

    def data(self) -> bytes:
        """The document's bytes, as they were fingerprinted; SkippedFile when the file changed or went since."""
        if self.text is not None:
            return self.text.encode("utf-8")
        assert self.path is not None
        data = read_bytes(self.path)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise SkippedFile("it changed while it was being indexed; run `wenda index` again")
        return data

    def extract(self) -> Extraction:
        """Read and extract the document in this process; SkippedFile says why it cannot be indexed. Builds,
        uploads and `wenda show` read through `index.isolation.Reading` instead."""
        return read_as(self.reader, self.data(), self.source)


def read_as(reader: str, data: bytes, name: str) -> Extraction:
    """The named reader's extraction of `data`; whatever else a reader raises (a parser's bug, a hostile file)
    becomes SkippedFile with the reason, so that one file is skipped and the rest goes on; what was raised is kept
    as its `detail`, for the build log."""
    try:
        return formats.BY_NAME[reader].read(data, name)
    except SkippedFile as exc:
        if exc.detail is None and exc.__cause__ is not None:  # a reader's wrapped parser failure: its traceback
            exc.detail = "".join(traceback.format_exception(exc.__cause__))
        raise
    except MemoryError as exc:
        raise SkippedFile(OUT_OF_MEMORY) from exc
    except Exception as exc:  # noqa: BLE001 - any reader failure (RecursionError too) is this file's
        if any(word in str(exc) for word in ("bad_alloc", "ailed to allocate", "out of memory")):
            raise SkippedFile(OUT_OF_MEMORY) from exc  # a native library's allocation failure
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[-1][:160] if lines else ""  # a wrapped traceback says what happened last
        raise SkippedFile(
            f"the {reader} reader failed on it ({type(exc).__name__}{': ' + detail if detail else ''}); "
            "if the file opens elsewhere, save it again (e.g. print to PDF) and add it again",
            traceback.format_exc(),
        ) from exc


def _files(root: Path) -> list[Path]:
    """Every file under `root`, sorted; hidden entries skipped, directory symlinks not followed."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in sorted(filenames) if not name.startswith(".")]
    return found


def discover(root: Path) -> list[Path]:
    """Documents under `root`, sorted; hidden entries skipped, directory symlinks not followed, and a file
    reached twice (a symlink to another file of the corpus) listed once, under its real name."""
    found = [path for path in _files(root) if path.name.lower().endswith(formats.SUFFIXES)]
    real = {os.path.realpath(path) for path in found if not path.is_symlink()}
    unique: list[Path] = []
    for path in found:
        target = os.path.realpath(path)
        if path.is_symlink() and target in real:
            continue  # the linked file itself is indexed
        real.add(target)
        unique.append(path)
    return unique


def others(root: Path) -> list[Path]:
    """Files under `root` that are not documents Wenda reads (a stray .exe, a .zip), so that every file of the
    corpus is accounted for; sources.toml and metadata sidecars (the corpus's own metadata) left out."""
    return [
        p
        for p in _files(root)
        if not p.name.lower().endswith(formats.SUFFIXES) and p.name != "sources.toml" and not is_sidecar(p.name)
    ]


def sidecars(root: Path) -> list[Path]:
    """The metadata sidecars under `root` (`<document>.meta.toml`, index/metadata.py)."""
    return [p for p in _files(root) if is_sidecar(p.name)]


def unsupported_reason(path: Path) -> str:
    """Why a file of an unknown kind is not indexed, and what to do."""
    suffix = path.suffix.lower() or "no extension"
    return f"not a document format Wenda reads ({suffix}); save it as .txt, .pdf, .docx or .html to index it"


def read_bytes(path: Path) -> bytes:
    """A corpus file's bytes, refusing one over the size limit; SkippedFile when it cannot be read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SkippedFile(
                f"too large ({size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB, set WENDA_MAX_FILE_MB)"
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SkippedFile("it was deleted while it was being indexed: left out") from exc
    except OSError as exc:
        raise SkippedFile(f"cannot read ({exc.strerror or exc})") from exc


def read_document(path: Path, root: Path, follow_symlinks: bool = False) -> Document:
    """Fingerprint one corpus file and pick its reader; raise SkippedFile with the reason when it cannot be used
    (a link out of the corpus among them, unless `follow_symlinks`)."""
    outside = not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
    if path.is_symlink() and outside and not follow_symlinks:
        raise SkippedFile(
            "a link to a file outside the corpus folder (not indexed, so it cannot be served; "
            "`wenda index --follow-symlinks` or WENDA_FOLLOW_SYMLINKS=1 indexes such links)"
        )
    data = read_bytes(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise SkippedFile(f"cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise SkippedFile("empty file")
    reader = formats.reader_for(path.name, data[:4096])
    source = path.relative_to(root).as_posix()
    return Document(source, hashlib.sha256(data).hexdigest(), reader.name, path, (len(data), stat.st_mtime_ns))
