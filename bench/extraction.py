"""Extraction quality of Wenda's own readers (index/formats) on the real Chinese documents of
bench/documents.toml: every passage verbatim at its locator, no running header or footer inside a passage,
reading order on multi-column pages, the expected passages whole, HTML main text and metadata.

    .venv/bin/python bench/extraction.py        # seconds; needs the stored copies (bench/fetch_documents.py)

Verbatim at its locator: a second, independent read of the file gives, at the passage's page (or chapter)
and lines, the passage's text (compared on letters and digits: a wrapped line's break, a table row's " | "
and a hyphen mended at a line end do not count). Results go to bench/results/extraction.jsonl and the
table in docs/formats.md.
"""

from __future__ import annotations

import re
import time

from fetch_documents import norm, present
from report import ROOT, save, update_table
from wenda.index.chunking import paragraphs_of
from wenda.index.config import ChunkingParams
from wenda.index.formats import reader_for
from wenda.index.formats.base import Extraction

DOC = ROOT / "docs" / "formats.md"
FORMATS = ("pdf", "docx", "epub", "html")


def verbatim(extraction: Extraction, again: Extraction) -> tuple[int, int]:
    """(passages whose text is at their locator in `again`, passages)."""
    good = 0
    for block in extraction.blocks:
        lines = again.lines_of(block.unit)[block.line - 1 : block.line - 1 + block.lines]
        good += norm(block.text) in norm("".join(lines))
    return good, len(extraction.blocks)


def leaked(running: str, passage: str) -> bool:
    """A passage that is, or starts with, a running header or footer (page numbers aside). Not "contains":
    a journal's name in its running header is also cited in its own references."""
    return bool(running) and passage.startswith(running)


def in_order(text: str, snippets: list[str]) -> int:
    """How many of `snippets` are whole in `text`, each after the one before."""
    position, found = 0, 0
    for snippet in snippets:
        at = text.find(norm(snippet), position)
        if at < 0:
            break
        position, found = at + len(norm(snippet)), found + 1
    return found


def measure(name: str, entry: dict, data: bytes) -> dict:
    reader = reader_for(name, data[:4096])
    started = time.perf_counter()
    extraction = reader.read(data, name)
    seconds = time.perf_counter() - started
    good, total = verbatim(extraction, reader.read(data, name))
    title = extraction.meta.get("title") or extraction.blocks[0].text
    body = [p for p in paragraphs_of(extraction, ChunkingParams(), title) if not p.heading]
    passages = [norm(p.text) for p in body]
    expect = entry.get("expect", {})
    row = {
        "file": name,
        "format": reader.name,
        "units": len(extraction.pages),
        "passages": len(body),
        "verbatim": good,
        "blocks": total,
        "ms": round(seconds * 1000, 1),
    }
    running = [re.sub(r"\d+", "", norm(line)) for line in expect.get("running", [])]
    if "snippets" in expect:  # a running line listed among them is expected out of the passages, not in
        snippets = [s for s in expect["snippets"] if re.sub(r"\d+", "", norm(s)) not in running]
        row["snippets"] = [sum(any(norm(s) in p for p in passages) for s in snippets), len(snippets)]
    if "running" in expect:
        row["running_leaks"] = sum(any(leaked(r, re.sub(r"\d+", "", p)) for r in running) for p in passages)
    if "order" in expect:
        page = "".join(norm(b.text) for b in extraction.blocks if b.unit == expect["order_page"] + 1)
        row["order"] = [in_order(page, expect["order"]), len(expect["order"])]
    if "with" in expect:
        text = "".join(passages)
        row["with"] = [sum(norm(s) in text for s in expect["with"]), len(expect["with"])]
        row["leaks"] = sum(norm(s) in text for s in expect.get("without", []))
        row["title"] = extraction.meta.get("title") == expect.get("title")
        row["date"] = extraction.meta.get("date") == expect.get("date")
    return row


def fraction(pair: list[int] | None) -> str:
    return f"{pair[0]}/{pair[1]}" if pair else "–"


COLUMNS = [
    ("file", lambda r: r["file"]),
    ("format", lambda r: r["format"]),
    ("pages / chapters", lambda r: str(r["units"]) if r["format"] in ("pdf", "epub") else "–"),
    ("passages", lambda r: f"{r['passages']:,}"),
    ("verbatim at locator", lambda r: f"{r['verbatim'] / r['blocks']:.1%}"),
    ("expected passages whole", lambda r: fraction(r.get("snippets") or r.get("with"))),
    ("running lines in passages", lambda r: str(r["running_leaks"]) if "running_leaks" in r else "–"),
    ("reading order", lambda r: fraction(r.get("order"))),
    ("boilerplate in text", lambda r: str(r["leaks"]) if "leaks" in r else "–"),
    (
        "title / date",
        lambda r: f"{'ok' if r['title'] else 'differs'} / {'ok' if r['date'] else 'differs'}" if "title" in r else "–",
    ),
    ("extraction", lambda r: f"{r['ms']:,.0f} ms"),
]


def table(rows: list[dict]) -> None:
    update_table("extraction", COLUMNS, rows, doc=DOC)


def main() -> None:
    rows: list[dict] = []
    for name, entry, path in present(FORMATS):
        row = measure(name, entry, path.read_bytes())
        print(row)
        rows = save("extraction", row, ("file",))
    table(rows)


if __name__ == "__main__":
    main()
