"""CSV and TSV through the standard library's csv: the bytes decoded as plain text is (text.py), the delimiter
(comma, tab or semicolon) found by csv.Sniffer; each row one passage whose cells are named by the header row
("姓名: 张三; 年龄: 35") when the table has one, cited by the line of the file it starts on. The row rules
(which row is the header, how a row reads) are shared with the Excel reader (xlsx.py)."""

from __future__ import annotations

import csv
import io
import re

from .base import Block, Extraction, Reader, SkippedFile, tidy
from .text import decode

# A table with more rows is a database export rather than a document: the rows after these are left out, so
# that one such file cannot stall a build (each row is a passage to embed).
MAX_ROWS = 100_000
HEADER_SCAN = 10  # a title row or two may stand above a table's header row
SNIFF_CHARS = 8192  # csv.Sniffer's quote pattern is quadratic in the sample: a hostile file gets no more
WORD = re.compile(r"[^\W\d_]")  # a letter or an ideograph: what a column name has and a number or date has not


def header_index(rows: list[list[str]]) -> int | None:
    """Which of a table's non-empty rows is its header: the first with two or more cells, when each of those
    names something (not a number or a date) and rows follow; the one-cell rows above it are titles."""
    for index, cells in enumerate(rows[:HEADER_SCAN]):
        filled = [cell for cell in cells if cell]
        if len(filled) >= 2:
            return index if index + 1 < len(rows) and all(WORD.search(cell) for cell in filled) else None
    return None


def row_text(cells: list[str], header: list[str] | None) -> str:
    """A row as a passage: "name: value; …" under a header (a column without a name gives its value alone),
    else its non-empty cells joined by " | "."""
    if header is None:
        return " | ".join(cell for cell in cells if cell)
    named = (f"{header[i]}: {cell}" if i < len(header) and header[i] else cell for i, cell in enumerate(cells))
    return "; ".join(text for text, cell in zip(named, cells, strict=True) if cell)


def row_texts(rows: list[list[str]]) -> list[str | None]:
    """The passage text of each non-empty row of a table, None for its header row (context, not a passage)."""
    top = header_index(rows)
    header = rows[top] if top is not None else None
    return [
        None if index == top else row_text(cells, header if top is not None and index > top else None)
        for index, cells in enumerate(rows)
    ]


def delimiter(text: str, name: str) -> str:
    """The delimiter csv.Sniffer finds among comma, tab and semicolon in the first lines; else by suffix."""
    default = "\t" if name.lower().endswith(".tsv") else ","
    first_line = text.split("\n", 1)[0]
    if default == "\t" and "\t" in first_line:
        return default
    sample = text[:SNIFF_CHARS]
    sample = sample[: sample.rfind("\n") + 1] or sample
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:  # one column, or nothing the sniffer can tell
        return default


class TabularReader(Reader):
    """Comma- or tab-separated values; no sniffing by content (any text could be one column of a CSV)."""

    name = "csv"
    suffixes = (".csv", ".tsv")

    def read(self, data: bytes, name: str) -> Extraction:
        text, encoding = decode(data)
        text = text.replace("\x00", "")  # NUL after the first 8 KB (decode refuses one before): nothing to show
        rows: list[tuple[int, int, int, list[str]]] = []  # (row, first line, lines, cells) of non-empty rows
        reader = csv.reader(io.StringIO(text), delimiter=delimiter(text, name))
        end = 0
        try:
            for number, record in enumerate(reader, start=1):
                if number > MAX_ROWS:
                    break
                cells = [tidy(cell) for cell in record]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    rows.append((number, end + 1, reader.line_num - end, cells))
                end = reader.line_num
        except csv.Error as exc:
            raise SkippedFile(
                f"not a readable table at line {reader.line_num} ({exc}); if it is text, rename it .txt"
            ) from exc
        texts = row_texts([cells for _, _, _, cells in rows])
        blocks = [
            Block(row, line, lines, where={"row": number})
            for (number, line, lines, _), row in zip(rows, texts, strict=True)
            if row
        ]
        return Extraction([text.split("\n")], blocks, encoding=encoding)
