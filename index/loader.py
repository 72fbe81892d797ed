"""Find corpus files and decode them (UTF-8 with or without BOM, GB18030), skipping unreadable ones."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".md")
# Encodings tried in order; GB18030 is a superset of GBK and GB2312, the usual legacy Chinese files.
ENCODINGS = ("utf-8", "gb18030")
# A bigger text file is almost always a dump or a log, and would take hours to embed on a small CPU box.
MAX_FILE_BYTES = int(os.environ.get("WENDA_MAX_FILE_MB", "20")) * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One decoded corpus file; `source` is its path relative to the corpus root, with '/'."""

    source: str
    text: str
    sha256: str
    encoding: str
    stat: tuple[int, int] | None = None  # (size, mtime_ns) of the file read, to notice later edits cheaply


class SkippedFile(Exception):
    """A corpus file that cannot be indexed; the message says why."""


def discover(root: Path) -> list[Path]:
    """All text files under `root`, sorted; hidden entries skipped, directory symlinks not followed."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(TEXT_SUFFIXES):
                found.append(Path(dirpath) / name)
    return found


def decode(data: bytes) -> tuple[str, str]:
    """Decode file bytes to text with universal line ends; raise SkippedFile for binary or unknown bytes."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise SkippedFile("empty file")
    if b"\x00" in data[:8192]:
        raise SkippedFile("binary file (contains NUL bytes)")
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text.replace("\r\n", "\n").replace("\r", "\n"), encoding
    raise SkippedFile("not UTF-8 or GB18030 text")


def read_document(path: Path, root: Path) -> Document:
    """Read and decode one corpus file; raise SkippedFile with the reason when it cannot be used."""
    try:
        if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
            raise SkippedFile("a link to a file outside the corpus folder (not indexed, so it cannot be served)")
        stat = path.stat()
        size = stat.st_size
        if size > MAX_FILE_BYTES:
            raise SkippedFile(
                f"too large ({size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB, set WENDA_MAX_FILE_MB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise SkippedFile(f"cannot read ({exc.strerror or exc})") from exc
    text, encoding = decode(data)
    source = path.relative_to(root).as_posix()
    return Document(source, text, hashlib.sha256(data).hexdigest(), encoding, (size, stat.st_mtime_ns))
