"""Markdown through markdown-it-py: headings become sections (without their `#`), a table row is a passage
with its header row as context, code blocks are kept verbatim as body text; inline markup is left as written."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .base import Block, Extraction, Reader, join_lines
from .text import decode

PARSER = MarkdownIt("commonmark").enable("table")


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
        tokens = PARSER.parse(text)
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
        return Extraction([text.split("\n")], [b for b in blocks if b.text], encoding=encoding)
