"""A cited passage in its context, re-read from the original file: what `wenda show SOURCE:LOCATOR` prints, so
anyone can check a citation against the document itself."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import Settings
from .errors import WendaError
from .formats import SkippedFile
from .formats.ocr import OcrOptions
from .isolation import Reading
from .loader import read_document
from .store import UNIT_LETTERS, Snapshot

LOCATOR = re.compile(r"^(?P<source>.+?):(?:(?P<letter>[pc])(?P<unit>\d+)(?::(?P<line>\d+))?|(?P<plain>\d+))$")
UNIT_NAMES = {letter: name for name, letter in UNIT_LETTERS.items()}


@dataclass(frozen=True)
class Context:
    """Lines around a cited place: (line number, text, part of the passage) in the unit's extracted text."""

    source: str
    title: str
    unit_name: str | None  # "page", "chapter" or None
    unit: int
    lines: list[tuple[int, str, bool]]
    changed: bool  # the file differs from what was indexed: the place may now hold something else


def parse(reference: str) -> tuple[str, str | None, int, int]:
    """ "report.pdf:p3:12" → ("report.pdf", "page", 3, 12); "a.txt:9" → ("a.txt", None, 0, 9)."""
    match = LOCATOR.match(reference)
    if not match:
        raise WendaError(
            f"{reference!r} is not SOURCE:LOCATOR; use the citation as printed, e.g. report.txt:12, "
            "report.pdf:p3:12 (page 3, line 12) or book.epub:c2:5 (chapter 2, line 5)"
        )
    if match["plain"]:
        return match["source"], None, 0, int(match["plain"])
    return match["source"], UNIT_NAMES[match["letter"]], int(match["unit"]), int(match["line"] or 1)


def show(snapshot: Snapshot, settings: Settings, reference: str, around: int = 3) -> Context:
    """The lines around `reference` in the indexed file (read isolated, OCR from the build's cache), marking
    the passage that starts there."""
    source, unit_name, unit, line = parse(reference)
    row = snapshot.db.execute("SELECT title FROM files WHERE source = ?", (source,)).fetchone()
    if row is None:
        raise WendaError(f"{source} is not in the index; copy SOURCE:LOCATOR from a citation")
    if snapshot.manifest.get("corpus") is None:
        raise WendaError(f"{source} was not indexed from a folder of files, so there is no original to show")
    root = settings.corpus.resolve()  # the corpus in use: a copied corpus and index show the copy's lines
    try:
        document = read_document(root / source, root, settings.follow_symlinks)
        extraction = Reading(options=OcrOptions(cache=settings.ocr_cache)).extract(document)
    except SkippedFile as exc:
        raise WendaError(f"cannot show {source}: {exc}") from exc
    if unit_name != extraction.unit:
        expected = {"page": "pN:LINE", "chapter": "cN:LINE", None: "LINE"}[extraction.unit]
        raise WendaError(f"{source} is cited as {source}:{expected}, not {reference}")
    if unit > len(extraction.pages) or (unit_name and unit < 1):
        raise WendaError(f"{source} has {len(extraction.pages)} {extraction.unit}s; there is no {unit_name} {unit}")
    lines = extraction.lines_of(unit)
    if not 1 <= line <= len(lines):
        raise WendaError(f"{reference}: line {line} is past the end ({len(lines)} lines there)")
    block = next((b for b in extraction.blocks if b.unit == unit and b.line <= line < b.line + b.lines), None)
    start, end = (block.line, block.line + block.lines - 1) if block else (line, line)
    marked = [
        (n, lines[n - 1], start <= n <= end) for n in range(max(1, start - around), min(len(lines), end + around) + 1)
    ]
    indexed = snapshot.manifest.get("files", {}).get(source, {}).get("sha256")
    return Context(source, row[0], unit_name, unit, marked, indexed is not None and document.sha256 != indexed)
