"""Documents arriving from outside (`wenda add`, a Telegram upload): checked, named safely and saved into the
corpus folder, or refused with the reason. Whatever arrives is untrusted: the name may try to escape the folder
or hide, the bytes may be a bomb, a scan or a copy of a file already there."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import threading
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .errors import WendaError
from .formats import SkippedFile
from .formats.base import with_saved_from, without_saved_from
from .formats.ocr import OcrOptions
from .isolation import Reading
from .loader import MAX_FILE_BYTES, discover

MAX_NAME_BYTES = 180  # under the 255-byte limit of common file systems, with room for " (2)" and a suffix
FETCH_TIMEOUT = 30  # seconds for the server to send anything at all (each read)
# Seconds for a whole page or document to arrive: a server that drips a byte a second never hits the per-read
# limit, so the fetch as a whole has a deadline too.
FETCH_DEADLINE = float(os.environ.get("WENDA_FETCH_DEADLINE", "60") or 60)
# control characters (C0 and C1: U+009B opens a terminal escape sequence), reserved characters, and the invisible
# ones that reorder or hide part of a name (bidi overrides, zero-width marks, line separators, the BOM)
UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]')
SUFFIX_OF = {"pdf": ".pdf", "docx": ".docx", "epub": ".epub", "html": ".html", "markdown": ".md", "text": ".txt"}


@dataclass(frozen=True)
class Admitted:
    """A document saved into the corpus: its source name there, and what its reader made of it."""

    source: str
    title: str
    blocks: int


def safe_name(name: str, fallback: str = "document") -> str:
    """A file name that stays inside the folder and in sight: the last path component only, without control,
    reserved or bidi characters, not hidden, not too long (in bytes), keeping its suffix."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    name = UNSAFE_NAME.sub("_", name).strip().lstrip(".").strip()
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:10]
    while len(f"{stem}.{suffix}".encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    stem = stem.strip() or fallback
    return f"{stem}.{suffix}" if suffix else stem


def fresh_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `name (2)`, `name (3)`, … : never an existing file."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    for number in range(1, 10_000):
        candidate = name if number == 1 else f"{stem} ({number}){'.' + suffix if suffix else ''}"
        if not (folder / candidate).exists() and not (folder / candidate).is_symlink():
            return folder / candidate
    raise WendaError(f"too many files named like {name} in {folder}")


def content_digest(data: bytes) -> str:
    """sha256 of a document's content: a saved web page without the "saved from" line Wenda put before it, so
    the same page fetched twice is one document."""
    return hashlib.sha256(without_saved_from(data)).hexdigest()


def digests(corpus: Path, indexed: dict[str, dict]) -> dict[str, str]:
    """content digest → source for the documents in the corpus folder now: from the index manifest where it
    knows the file (web pages aside: their digest is of the content under the address line), else read (a file
    deleted since it was indexed is no longer there to be a duplicate of)."""
    known: dict[str, str] = {}
    for path in discover(corpus):
        source = path.relative_to(corpus).as_posix()
        if "sha256" in indexed.get(source, {}) and not path.suffix.lower().startswith((".htm", ".xht")):
            known[indexed[source]["sha256"]] = source
            continue
        try:
            known[content_digest(path.read_bytes())] = source
        except OSError:
            continue
    return known


def folder_documents(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The documents of a folder being added, and those refused with the reason: whatever leaves the folder (a
    symbolic link, at any depth, whose real path is elsewhere: `ln -s /etc/passwd drop/x.txt`) and hard links
    (a second name of a file that may live anywhere on the disk: it cannot be told apart from the original)."""
    root = os.path.realpath(folder)
    kept: list[Path] = []
    refused: list[tuple[Path, str]] = []
    for path in discover(folder):
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root:
            refused.append((path, "it is a link to a file outside the folder being added; copy the file in instead"))
            continue
        try:
            links = os.stat(real).st_nlink
        except OSError as exc:
            refused.append((path, f"cannot be read ({exc.strerror})"))
            continue
        if links > 1 and not path.is_symlink():
            refused.append((path, "it is a hard link (another name of a file that may be anywhere); copy it instead"))
            continue
        kept.append(path)
    return kept, refused


def admit(
    corpus: Path,
    data: bytes,
    name: str,
    known: dict[str, str],
    url: str | None = None,
    ocr_cache: Path | None = None,
) -> Admitted:
    """Save `data` (a document called `name`) into `corpus` once it is known to be indexable (read isolated, as
    a build reads: an upload is untrusted); WendaError with the reason otherwise (nothing is written then).
    `known` maps the digests of files already there to their names, and gains this one. OCR results go to
    `ocr_cache`, the build's, so the build that follows reads a scan from there."""
    label = safe_name(name)
    if len(data) > MAX_FILE_BYTES:
        raise WendaError(
            f"{label}: too large ({len(data) / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB, "
            "set WENDA_MAX_FILE_MB)"
        )
    if not data.strip():
        raise WendaError(f"{label}: the file is empty")
    digest = content_digest(data)
    if digest in known:
        raise WendaError(f"{label}: the same file is already in the corpus as {known[digest]}")
    reader = formats.reader_for(label, data[:4096])
    if url and reader.name == "html":  # the page keeps its address, as a browser's "Save as" does
        data = with_saved_from(data, url)
    try:
        extraction = Reading(options=OcrOptions(cache=ocr_cache)).read(reader.name, data, label)
    except SkippedFile as exc:
        raise WendaError(f"{label}: {exc}") from exc
    if not extraction.blocks:
        raise WendaError(f"{label}: no text in it")
    if not label.lower().endswith(reader.suffixes):  # a web page fetched as "/news/123" becomes "123.html"
        label += SUFFIX_OF.get(reader.name, ".txt")
    corpus.mkdir(parents=True, exist_ok=True)
    path = write_new(corpus, label, data)
    known[digest] = path.name
    title = extraction.meta.get("title") or extraction.blocks[0].text
    return Admitted(path.name, title, len(extraction.blocks))


def write_new(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` to a fresh name in `folder` all at once: a hidden part file, synced, then linked in place
    (linking fails instead of replacing, so a file that appeared meanwhile is never overwritten)."""
    part = folder / f".{os.getpid()}.{hashlib.sha256(name.encode()).hexdigest()[:12]}.part"
    with open(part, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        while True:
            path = fresh_path(folder, name)
            try:
                os.link(part, path)
                return path
            except FileExistsError:
                continue
    finally:
        part.unlink(missing_ok=True)


def fetch(url: str, limit: int = MAX_FILE_BYTES) -> tuple[bytes, str, str]:
    """(bytes, file name, final URL) of a web page or document; WendaError naming the URL when it cannot be had."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise WendaError(f"{url}: only http:// and https:// addresses can be fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "Wenda/0.1 (+document intake)"})
    result: dict = {}
    late = threading.Event()  # set when the caller stopped waiting: the reader gives up at its next read

    def download() -> None:
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - scheme checked
                pieces, size = [], 0
                while size <= limit and not late.is_set():
                    piece = response.read1(65536)
                    if not piece:
                        break
                    pieces.append(piece)
                    size += len(piece)
                result["data"], result["final"] = b"".join(pieces), response.geturl()
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            result["error"] = getattr(exc, "reason", None) or exc

    reader = threading.Thread(target=download, name="wenda-fetch", daemon=True)
    reader.start()
    reader.join(FETCH_DEADLINE)
    if reader.is_alive():
        late.set()
        raise WendaError(
            f"{url}: it did not arrive within {FETCH_DEADLINE:.0f} s (a slow or stalling server); "
            "nothing was added. Download it yourself, or raise WENDA_FETCH_DEADLINE"
        )
    if "error" in result:
        raise WendaError(f"{url}: cannot fetch it ({result['error']})")
    data, final = result["data"], result["final"]
    if len(data) > limit:
        raise WendaError(f"{url}: larger than {limit // 2**20} MB; download it and check it first")
    path = urllib.parse.unquote(urllib.parse.urlsplit(final).path)
    name = path.rstrip("/").split("/")[-1] or urllib.parse.urlsplit(final).hostname or "page"
    return data, name, final


def remove(corpus: Path, source: str) -> Path:
    """Delete the corpus file called `source` (a name as `/docs` lists it; a link is removed, not its target);
    WendaError when there is no such document."""
    path = corpus / source
    inside = Path(os.path.realpath(path.parent)).is_relative_to(os.path.realpath(corpus))
    if not inside or any(part.startswith(".") for part in Path(source).parts) or ".." in Path(source).parts:
        raise WendaError(f"{source}: not a document of the corpus")
    if not path.is_file():
        raise WendaError(f"{source}: no such document in the corpus")
    path.unlink()
    return path
