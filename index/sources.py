"""Per-file metadata: from `sources.toml` in the corpus root (title, publisher, place, date, url), which
overrides what the document says about itself (PDF info, Word properties, HTML meta tags)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import WendaError

SOURCES_FILE = "sources.toml"
FIELDS = ("title", "publisher", "place", "date", "url")


@dataclass(frozen=True)
class SourceInfo:
    """What is known about one file; a file titled nowhere is titled by its first line."""

    title: str
    publisher: str | None = None
    place: str | None = None
    date: str | None = None
    url: str | None = None  # where the document was fetched from (a web page), for links in citations

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}


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


# A first line this short, not ending a sentence, is taken for the title of a file that has none. A longer one
# is the first paragraph: as a title it would be cited on every passage and embedded with each of them (a
# 200-character paragraph made every chunk of its file half title: slower builds, blurred vectors).
TITLE_MAX_CHARS = 40


def source_info(entry: dict | None, first_line: str, meta: dict | None = None, source: str = "") -> SourceInfo:
    """Metadata for a file: its sources.toml entry, else the document's own metadata, else (for the title)
    its first line when that reads as a title, else the file's name without its extension."""
    merged = {**(meta or {}), **(entry or {})}
    line = first_line.strip()
    if len(line) <= TITLE_MAX_CHARS and not line.endswith(("。", "！", "？", "!", "?")) and line:
        merged.setdefault("title", line)
    merged.setdefault("title", PurePosixPath(source).stem or line[:TITLE_MAX_CHARS])
    return SourceInfo(**{name: merged[name] for name in FIELDS if merged.get(name)})
