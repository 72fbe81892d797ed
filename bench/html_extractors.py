"""Which extractor should take the article out of a saved Chinese news page: trafilatura or readability-lxml.

    .venv/bin/python bench/html_extractors.py            # every HTML page in bench/documents.toml
    .venv/bin/python bench/html_extractors.py --show gmw-2017-astronaut.html   # each extractor's text

Reads the pages listed in bench/documents.toml from ~/.cache/wenda/documents/ ($WENDA_DOCUMENTS), skipping
(with a message) any that is missing, and checks each extractor against the page's [expect] table:

  title     expected title found in the extracted one ('=' when nothing else is left after it, such as a
            '_光明网' site suffix)
  date      extracted publication date equals the expected one (readability-lxml has no date)
  author    extracted author equals the expected one, where the page names one (readability-lxml: none)
  with      `with` passages found in the main text
  leaked    `without` passages (navigation, related links, comments, copyright lines) found in it
  bytes     `with` passages found when the extractor is handed the file's bytes instead of text decoded
            here: three pages were saved as UTF-8 but still declare charset=gbk/gb2312
  ms/page   median of --runs extractions from decoded text
Per page it also gives the main text's CJK characters and its paragraphs (non-empty lines).

Configurations: trafilatura.bare_extraction(with_metadata=True) as is, with favor_precision=True, with
favor_recall=True and with include_tables=False (its main text only: comments come apart, in .comments);
readability-lxml Document(html).summary() turned into text, its title from .short_title().
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import lxml.html
from fetch_documents import norm, present

CJK = re.compile(r"[\u3400-\u9fff]")
DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_-]+)""", re.I)

Result = dict  # title, date, author, text


def decode(data: bytes) -> str:
    """Strict UTF-8 first (what most saved pages are, whatever they declare), then the declared charset,
    then GB18030 (a superset of GBK and GB2312)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = DECLARED.search(data[:4096])
    for encoding in ([declared.group(1).decode("ascii")] if declared else []) + ["gb18030"]:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("gb18030", errors="replace")


def trafilatura_with(**options) -> Callable[[str | bytes], Result]:
    def extract(page: str | bytes) -> Result:
        import trafilatura

        doc = trafilatura.bare_extraction(page, with_metadata=True, **options)
        if doc is None:
            return {"title": None, "date": None, "author": None, "text": ""}
        return {"title": doc.title, "date": doc.date, "author": doc.author, "text": doc.text or ""}

    return extract


def readability(page: str | bytes) -> Result:
    from readability import Document

    document = Document(page)
    body = lxml.html.fragment_fromstring(document.summary(html_partial=True))
    for block in body.iter("p", "div", "br", "li", "h1", "h2", "h3", "h4", "tr"):
        block.tail = "\n" + (block.tail or "")  # keep paragraph breaks in text_content()
    return {"title": document.short_title(), "date": None, "author": None, "text": body.text_content()}


EXTRACTORS: dict[str, tuple[str, Callable[[str | bytes], Result]]] = {
    "trafilatura": ("trafilatura", trafilatura_with()),
    "trafilatura favor_precision": ("trafilatura", trafilatura_with(favor_precision=True)),
    "trafilatura favor_recall": ("trafilatura", trafilatura_with(favor_recall=True)),
    "trafilatura include_tables=False": ("trafilatura", trafilatura_with(include_tables=False)),
    "readability-lxml": ("readability-lxml", readability),
}


def measure(name: str, entry: dict, path: Path, extractor: str, runs: int) -> dict:
    extract = EXTRACTORS[extractor][1]
    data = path.read_bytes()
    page = decode(data)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = extract(page)
        seconds.append(time.perf_counter() - start)
    from_bytes = extract(data)
    expect = entry["expect"]
    text = norm(result["text"])
    title, wanted = norm(result["title"] or ""), norm(expect["title"])
    return {
        "file": name,
        "extractor": extractor,
        "title": "=" if title == wanted else ("in" if wanted and wanted in title else "no"),
        "got_title": result["title"],
        "date": result["date"] == expect["date"],
        "got_date": result["date"],
        "author": (norm(result["author"] or "") == norm(expect["author"])) if "author" in expect else None,
        "got_author": result["author"],
        "with": sum(norm(s) in text for s in expect["with"]),
        "with_expected": len(expect["with"]),
        "leaked": [s for s in expect["without"] if norm(s) in text],
        "without_expected": len(expect["without"]),
        "bytes_with": sum(norm(s) in norm(from_bytes["text"]) for s in expect["with"]),
        "cjk": len(CJK.findall(result["text"])),
        "paragraphs": sum(bool(line.strip()) for line in result["text"].splitlines()),
        "seconds": statistics.median(seconds),
    }


def summary(rows: list[dict]) -> str:
    lines = [
        "| extractor | version | title found (exact) | date | author | with | leaked | bytes | ms/page |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for extractor, (package, _) in EXTRACTORS.items():
        mine = [r for r in rows if r["extractor"] == extractor]
        if not mine:
            continue
        authors = [r for r in mine if r["author"] is not None]
        cells = [
            extractor,
            version(package),
            f"{sum(r['title'] != 'no' for r in mine)}/{len(mine)} ({sum(r['title'] == '=' for r in mine)})",
            f"{sum(r['date'] for r in mine)}/{len(mine)}",
            f"{sum(r['author'] for r in authors)}/{len(authors)}",
            f"{sum(r['with'] for r in mine)}/{sum(r['with_expected'] for r in mine)}",
            f"{sum(len(r['leaked']) for r in mine)}/{sum(r['without_expected'] for r in mine)}",
            f"{sum(r['bytes_with'] for r in mine)}/{sum(r['with_expected'] for r in mine)}",
            f"{1000 * statistics.mean(r['seconds'] for r in mine):.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_page(rows: list[dict]) -> str:
    extractors = [e for e in EXTRACTORS if any(r["extractor"] == e for r in rows)]
    lines = ["| page | " + " | ".join(extractors) + " |", "|---|" + "---|" * len(extractors)]
    for name in dict.fromkeys(r["file"] for r in rows):
        cells = []
        for extractor in extractors:
            row = next(r for r in rows if r["file"] == name and r["extractor"] == extractor)
            cell = f"with {row['with']}/{row['with_expected']}, leaked {len(row['leaked'])}/{row['without_expected']}"
            cell += f", {row['cjk']} CJK in {row['paragraphs']} paragraphs"
            if row["bytes_with"] != row["with"]:
                cell += f", bytes {row['bytes_with']}/{row['with_expected']}"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed extractions per page and extractor (median)")
    parser.add_argument("--show", metavar="FILE", help="print each extractor's result for one page")
    parser.add_argument("--verbose", action="store_true", help="also print what each extractor found")
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    args = parser.parse_args()
    pages = present(("html",))
    if args.show:
        path = next((p for n, _, p in pages if n == args.show), None)
        if path is None:
            print(f"{args.show} is not an HTML page present in bench/documents.toml", file=sys.stderr)
            return 1
        for extractor, (_, extract) in EXTRACTORS.items():
            result = extract(decode(path.read_bytes()))
            print(f"===== {extractor}: {result['title']} | {result['date']} | {result['author']}\n{result['text']}")
        return 0
    if not pages:
        print("no HTML page to measure", file=sys.stderr)
        return 1
    rows = [measure(name, entry, path, extractor, args.runs) for name, entry, path in pages for extractor in EXTRACTORS]
    print(summary(rows))
    print()
    print(per_page(rows))
    if args.verbose:
        for row in rows:
            print(
                f"\n{row['file']} / {row['extractor']}: title {row['got_title']!r}, date {row['got_date']}, "
                f"author {row['got_author']!r}" + "".join(f"\n  leaked: {s}" for s in row["leaked"])
            )
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
