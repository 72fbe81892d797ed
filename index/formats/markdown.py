"""Markdown through markdown-it-py: headings become sections (without their `#`), a table row is a passage
with its header row as context, code blocks are kept verbatim as body text; inline markup is left as written.
YAML front matter (Jekyll, Hugo, Obsidian: `---` lines at the very top) is the document's metadata (title,
date, author, tags), not its text."""

from __future__ import annotations

import datetime

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .base import Block, Extraction, Reader, join_lines
from .text import decode

PARSER = MarkdownIt("commonmark").enable("table")
FRONT_MATTER_LINES = 200  # a closing `---` further down is a thematic break, not the end of front matter
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # safe: no Python objects from an untrusted file


def front_matter(lines: list[str]) -> tuple[dict[str, str | list[str]], int]:
    """The metadata of a document's YAML front matter and the number of lines it spans (0 without one: no
    `---` first line, no closing line near it, or not a YAML mapping — then the lines are ordinary text)."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    end = next((i for i in range(1, min(len(lines), FRONT_MATTER_LINES)) if lines[i].strip() in ("---", "...")), 0)
    if not end:
        return {}, 0
    try:
        table = yaml.load("\n".join(lines[1:end]), Loader=LOADER)  # a safe loader
    except yaml.YAMLError:
        return {}, 0
    if not isinstance(table, dict):
        return {}, 0
    meta: dict[str, str | list[str]] = {}
    for field, keys in (("title", ("title",)), ("date", ("date",)), ("publisher", ("publisher", "author"))):
        value = next((table[key] for key in keys if scalar(table.get(key))), None)
        if value is not None:
            meta[field] = text_of(value)
    for key in ("tags", "keywords", "categories"):
        value = table.get(key)
        items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
        tags = [text_of(item).strip() for item in items if scalar(item) and text_of(item).strip()]
        if tags:
            meta["tags"] = list(dict.fromkeys([*meta.get("tags", []), *tags]))
    return meta, end + 1


def scalar(value: object) -> bool:
    """Text, a number or a date: what metadata may hold (a nested or aliased structure is left out)."""
    return isinstance(value, str | int | float | datetime.date) and not isinstance(value, bool)


def text_of(value: object) -> str:
    return (value.isoformat() if isinstance(value, datetime.date) else str(value))[:200]


def rows(tokens: list[Token], start: int) -> tuple[list[tuple[int, list[str]]], int]:
    """(source line, cells) of each row of the table opening at `start`, and the index after it."""
    found: list[tuple[int, list[str]]] = []
    index = start
    while tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "tr_open":
            found.append((token.map[0] + 1 if token.map else 0, []))
        elif token.type == "inline" and found:
            found[-1][1].append(token.content.strip())
        index += 1
    return found, index + 1


class MarkdownReader(Reader):
    name = "markdown"
    suffixes = (".md", ".markdown")

    def read(self, data: bytes, name: str) -> Extraction:
        text, encoding = decode(data)
        source_lines = text.split("\n")
        meta, skipped = front_matter(source_lines)
        # Front matter lines are blanked, not removed, so every block keeps its line in the file.
        tokens = PARSER.parse("\n" * skipped + "\n".join(source_lines[skipped:]))
        blocks: list[Block] = []
        tables = 0
        index = 0
        while index < len(tokens):
            token = tokens[index]
            first = token.map[0] + 1 if token.map else 0
            if token.type == "table_open":
                tables += 1
                found, index = rows(tokens, index)
                header = " | ".join(found[0][1])
                for number, (line, cells) in enumerate(found[1:], start=2):  # row 1 is the header
                    where = {"table": tables, "row": number}
                    blocks.append(Block(" | ".join(cells), line, where=where, context=header))
                continue
            if token.type == "heading_open":
                blocks.append(Block(tokens[index + 1].content.strip(), first, level=int(token.tag[1:])))
                index += 3
                continue
            if token.type == "inline" and tokens[index - 1].type == "paragraph_open":
                lines = token.content.split("\n")
                blocks.append(Block(join_lines(lines), first, lines=len(lines)))
            elif token.type in ("fence", "code_block") and token.content.strip():
                code = token.content.rstrip("\n")
                offset = 1 if token.type == "fence" else 0  # the body starts after the ``` line
                blocks.append(Block(code, first + offset, lines=code.count("\n") + 1))
            index += 1
        return Extraction([source_lines], [b for b in blocks if b.text], meta=meta, encoding=encoding)
