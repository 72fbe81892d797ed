"""Metadata an owner declares for files: a sidecar `<file>.meta.toml` beside a document, and `[kb.NAME.metadata]`
tables of glob patterns in the configuration (index/knowledge.py).

    # 2022/report.pdf.meta.toml
    title = "2022年工作报告"
    date = 2022-03-01
    tags = ["年报", "政府"]
    department = "发改委"

    # wenda.toml
    [kb.reform.metadata]
    "2022/*" = { tags = ["2022"] }
    "*.pdf" = { kind = "scan" }

Declared fields are cited with every passage of the file and can be filtered on (retrieval/filters.py): the
citation's own (`title`, `publisher`, `place`, `date`, `url`) replace what the document says, `tags` is a list
of words, and any other key of text, a number, a boolean or a date becomes a field of its own. A file takes
the patterns that match its path (relative to the corpus; `*` crosses folders) in order, then its
`sources.toml` entry, then its sidecar: the nearer the declaration, the later it wins; tags add up.
"""

from __future__ import annotations

import datetime
import fnmatch
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

SIDECAR = ".meta.toml"
MAX_SIDECAR_BYTES = 64 * 1024
TEXT_FIELDS = ("title", "publisher", "place", "date", "url")  # the citation's own, as sources.toml has them
# Keys a citation already has for the passage itself: declaring one would hide where the passage is.
RESERVED = frozenset(
    "source line lines page chapter table row footnote locator paragraph section stale format start end text rank "
    "score".split()
)

Value = str | int | float | bool | tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One `[kb.NAME.metadata]` entry: the fields of the files whose path matches `pattern`."""

    pattern: str
    fields: tuple[tuple[str, Value], ...]

    def matches(self, source: str) -> bool:
        return fnmatch.fnmatchcase(source, self.pattern)


def is_sidecar(name: str) -> bool:
    return name.lower().endswith(SIDECAR)


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def clean(table: Mapping, where: str, problem: Callable[[str], None]) -> dict[str, Value]:
    """The usable fields of one declaration; each unusable key is left out and named to `problem`."""
    fields: dict[str, Value] = {}
    for key, value in table.items():
        if not isinstance(key, str) or not key.strip() or key in RESERVED:
            problem(f"{where}: {key!r} is not a field name one can declare (reserved: {', '.join(sorted(RESERVED))})")
            continue
        if isinstance(value, datetime.date | datetime.time):
            value = value.isoformat()
        if key == "tags":
            tags = [value] if isinstance(value, str) else value
            if not isinstance(tags, list) or not all(isinstance(tag, str) and tag.strip() for tag in tags):
                problem(f'{where}: tags must be a list of words, tags = ["…", "…"]')
                continue
            fields[key] = tuple(dict.fromkeys(tag.strip() for tag in tags))
        elif key in TEXT_FIELDS:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                problem(f"{where}: {key} must be text")
                continue
            fields[key] = str(value)
        elif isinstance(value, str | int | float | bool):
            fields[key] = value
        else:
            problem(f"{where}: {key} must be text, a number, true/false or a date, not a {type(value).__name__}")
    return fields


def read_sidecar(path: Path, problem: Callable[[str], None]) -> dict[str, Value]:
    """A document's sidecar fields ({} without one); one that cannot be read is named to `problem` and left
    out, and the document is indexed without it."""
    try:
        if path.is_symlink():
            problem(f"{path.name}: a metadata file may not be a symbolic link; left out")
            return {}
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            problem(f"{path.name}: over {MAX_SIDECAR_BYTES // 1024} KB, not a metadata file; left out")
            return {}
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problem(f"{path.name}: not readable TOML ({exc}); left out, fix it and run `wenda index`")
        return {}
    return clean(table, path.name, problem)


def rules_from(table: object, where: str, problem: Callable[[str], None]) -> tuple[Rule, ...]:
    """The rules of a `[kb.NAME.metadata]` table ({pattern: {field: value}})."""
    if not isinstance(table, dict):
        problem(f'{where} must be a table of "pattern" = {{ field = value }}')
        return ()
    rules = []
    for pattern, fields in table.items():
        if not isinstance(fields, dict):
            problem(f'{where}: "{pattern}" must be a table, "{pattern}" = {{ tags = ["…"] }}')
            continue
        rules.append(Rule(pattern, tuple(clean(fields, f'{where} "{pattern}"', problem).items())))
    return tuple(rules)


def declared(source: str, rules: tuple[Rule, ...], *nearer: Mapping[str, Value]) -> dict[str, Value]:
    """The fields declared for one file: the rules matching it in order, then each of `nearer` (its
    sources.toml entry, its sidecar); a later value wins, tags add up. JSON-ready (tags as a list)."""
    fields: dict[str, Value] = {}
    tags: dict[str, None] = {}
    for layer in [dict(rule.fields) for rule in rules if rule.matches(source)] + [dict(n) for n in nearer]:
        tags.update(dict.fromkeys(layer.pop("tags", ())))
        fields.update(layer)
    if tags:
        fields["tags"] = list(tags)  # type: ignore[assignment]
    return fields
