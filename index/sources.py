"""Per-file metadata: what a document says about itself (PDF info, Word properties, HTML meta tags, else its
opening heading and the places its text names), overridden by `sources.toml` in the corpus root (title,
publisher, place, date, url) where its owner wrote one."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import WendaError
from .furniture import is_furniture
from .gazetteer import place_of

SOURCES_FILE = "sources.toml"
FIELDS = ("title", "publisher", "place", "date", "url")


@dataclass(frozen=True)
class SourceInfo:
    """What is known about one file; a file titled nowhere is titled by its opening heading or its name."""

    title: str
    publisher: str | None = None
    place: str | None = None
    date: str | None = None
    url: str | None = None  # where the document was fetched from (a web page), for links in citations
    extra: dict = field(default_factory=dict)  # declared tags and fields of its own (index/metadata.py)


def load_sources(root: Path) -> dict[str, dict]:
    """Read `sources.toml` if present; a malformed file is an error naming it (no silent loss of titles)."""
    path = root / SOURCES_FILE
    if not path.exists():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WendaError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    entries: dict[str, dict] = {}
    for source, entry in table.items():
        if not isinstance(entry, dict):
            raise WendaError(f'{path}: ["{source}"] must be a table with title = "..."')
        unknown = set(entry) - set(FIELDS)
        if unknown:
            raise WendaError(f'{path}: ["{source}"] has unknown keys {sorted(unknown)}; use {list(FIELDS)}')
        entries[source] = {k: str(v) for k, v in entry.items()}
    return entries


# A heading this short, not ending a sentence, is taken for the title of a file that has none. A longer line
# is the first paragraph: as a title it would be cited on every passage and embedded with each of them (a
# 200-character paragraph made every chunk of its file half title: slower builds, blurred vectors).
TITLE_MAX_CHARS = 40
OPENING_LINES = 6  # a title is looked for among the first lines only (after page headers and bylines)
SUBTITLE = re.compile(r"^\s*(——|—|--|－－)")  # "——2020年我市全面深化改革工作掠影" continues the title above it
SENTENCE_END = ("。", "！", "？", "!", "?", "；", ";", "，", ",", ".")
# A file name made of numbers, hex digests and dates says nothing about the text: cited, never embedded.
# Atomic groups and possessive repeats keep the match linear on any name (file names are untrusted: the
# backtracking form took 2 s on 36 letters and doubled with each one more).
IDENTIFIER = re.compile(r"^[\W_]*+(?:(?>[0-9a-f]{2,}|[a-z]?\d+[a-z]?)[\W_]*+)++$", re.IGNORECASE)


LATIN_TITLE_MAX_CHARS = 100  # the same title in English letters runs 2-3 times longer ("MinerU supports DOCX…")


def is_heading(line: str) -> bool:
    latin = sum(char.isascii() for char in line) > 0.8 * len(line)
    return 0 < len(line) <= (LATIN_TITLE_MAX_CHARS if latin else TITLE_MAX_CHARS) and not line.endswith(SENTENCE_END)


def title_from(opening: Sequence[str]) -> str | None:
    """The document's own title: its first heading-shaped line that is not page furniture (a page header, a
    byline), with a dash-led subtitle right below it; None when the text opens with body text."""
    lines = [line.strip() for line in opening[:OPENING_LINES] if line.strip()]
    for i, line in enumerate(lines):
        if is_furniture(line):
            continue
        if not is_heading(line):
            return None
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if SUBTITLE.match(following) and is_heading(following):
            return line + following.strip()
        return line
    return None


def is_identifier(title: str) -> bool:
    """A title that is only a file name's numbers and digests ("003_71e5a5211310dfa3")."""
    return bool(IDENTIFIER.match(title))


def source_info(
    entry: dict | None, opening: Sequence[str], meta: dict | None = None, source: str = "", text: str = ""
) -> SourceInfo:
    """Metadata for a file: what was declared for it (`entry`: sources.toml, sidecar, patterns), else the
    document's own metadata, else what the text says about itself: the title from its opening lines
    (`title_from`), else the file's name without its extension; the place it is about from the gazetteer
    (`place_of` over `text`). Declared fields other than the citation's own are kept in `extra`."""
    merged = {**(meta or {}), **(entry or {})}
    if not merged.get("title") and (title := title_from(opening)):
        merged["title"] = title
    merged.setdefault("title", PurePosixPath(source).stem or (opening[0].strip()[:TITLE_MAX_CHARS] if opening else ""))
    if not merged.get("place") and text:
        merged["place"] = place_of(text)
    extra = {name: value for name, value in (entry or {}).items() if name not in FIELDS}
    if (meta or {}).get("tags"):  # the document's own (Markdown front matter) before the declared ones
        extra["tags"] = list(dict.fromkeys([*meta["tags"], *extra.get("tags", [])]))
    return SourceInfo(**{name: merged[name] for name in FIELDS if merged.get(name)}, extra=extra)
