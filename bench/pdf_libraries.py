"""Which library should read Chinese PDFs: text correctness, reading order, running headers, speed, memory.

    .venv/bin/python bench/pdf_libraries.py                     # every PDF in bench/documents.toml
    .venv/bin/python bench/pdf_libraries.py --runs 1 --no-memory # quicker: one timed run, no memory pass
    .venv/bin/python bench/pdf_libraries.py --show kzyjc-network-first-paper.pdf:2   # each library's page 3

Reads the PDFs listed in bench/documents.toml from ~/.cache/wenda/documents/ ($WENDA_DOCUMENTS), skipping
(with a message) any that is missing; bench/fetch_documents.py says where they come from. For each library:

  CJK       CJK characters extracted (after NFKC), as % of the most any library got from the same file
  bad       '(cid:N)' placeholders, U+FFFD and private-use characters (undecodable glyphs)
  radicals  Kangxi radicals (U+2F00..) given instead of the ideograph (⼈ for 人): they look right but do not
            match a query until NFKC-normalised
  gaps      % of CJK characters followed by a space and another CJK character (spaced-out text)
  snippets  expected passages found (documents.toml `snippets` + `order`), compared on letters and digits
  order     on each multi-column page (`order_page`): passages found whole, and whether in reading order
  running   expected running headers/footers found among the lines that repeat in the top or bottom 10%
            of at least 3 pages (line positions from the library's own API), and in brackets how many
            other lines were flagged that way
  ms/page   median of --runs timed extractions of a file, per page, averaged over the files
  peak MB   growth of the maximum resident set while extracting the file with the most pages, each
            library in a fresh process after its imports (the process's peak in brackets)

Libraries: pdfplumber 'extract_text()' and 'extract_text(use_text_flow=True)', pdfminer.six
'extract_text(laparams=LAParams())', pypdf 'extract_text()' and 'extract_text(extraction_mode="layout")',
pypdfium2 'get_textpage().get_text_range()'.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from fetch_documents import norm, present

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
SPACED = re.compile(r"[\u3400-\u9fff\uf900-\ufaff] (?=[\u3400-\u9fff\uf900-\ufaff])")
BAD = re.compile(r"\(cid:\d+\)|\ufffd|[\ue000-\uf8ff]")
RADICALS = re.compile(r"[\u2e80-\u2fdf]")  # Kangxi and supplementary radicals standing in for ideographs
BAND = 0.10  # top and bottom share of the page height searched for running headers and footers
REPEATS = 3  # pages a line must repeat on to count as running


def quiet() -> None:
    for name in ("pdfminer", "pypdf", "pdfplumber"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ------------------------------------------------------------------------------------------ text


def text_pdfplumber(path: Path) -> list[str]:
    import pdfplumber

    pages = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            pages.append(page.extract_text() or "")
            page.close()  # drop the page's cached objects, as a reader of long files would
    return pages


def text_pdfplumber_flow(path: Path) -> list[str]:
    import pdfplumber

    pages = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            pages.append(page.extract_text(use_text_flow=True) or "")
            page.close()
    return pages


def text_pdfminer(path: Path) -> list[str]:
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    return extract_text(path, laparams=LAParams()).split("\f")[:-1]  # a form feed ends every page


def text_pypdf(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


def text_pypdf_layout(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text(extraction_mode="layout") for page in PdfReader(path).pages]


def text_pypdfium2(path: Path) -> list[str]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    pages = []
    for page in pdf:
        textpage = page.get_textpage()
        pages.append(textpage.get_text_range())
        textpage.close()
        page.close()
    pdf.close()
    return pages


# ---------------------------------------------------------------------- lines with their positions
# Each returns, per page, the page height and (distance of the line's top from the page top, text).

Lines = list[tuple[float, list[tuple[float, str]]]]


def group(fragments: list[tuple[float, float, float, str]], tolerance: float = 2.0) -> list[tuple[float, str]]:
    """(top, bottom, x, text) fragments -> lines: a fragment whose vertical middle falls within the line
    being built (give or take `tolerance` points) joins it; a line's parts are ordered by x."""
    lines: list[list] = []  # [top, bottom, [(x, text)]]
    for top, bottom, x, text in sorted(fragments, key=lambda f: ((f[0] + f[1]) / 2, f[2])):
        middle = (top + bottom) / 2
        if lines and lines[-1][0] - tolerance <= middle <= lines[-1][1] + tolerance:
            lines[-1][1] = max(lines[-1][1], bottom)
            lines[-1][2].append((x, text))
        else:
            lines.append([top, bottom, [(x, text)]])
    return [(top, " ".join(text for _, text in sorted(parts))) for top, _, parts in lines]


def lines_pdfplumber(path: Path) -> Lines:
    import pdfplumber

    out = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            out.append((float(page.height), [(line["top"], line["text"]) for line in page.extract_text_lines()]))
            page.close()
    return out


def lines_pdfminer(path: Path) -> Lines:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer, LTTextLine

    out = []
    for page in extract_pages(path, laparams=LAParams()):
        fragments = []
        for box in page:
            if isinstance(box, LTTextContainer):
                for line in box:
                    text = line.get_text().strip() if isinstance(line, LTTextLine) else ""
                    if text:
                        fragments.append((page.height - line.y1, page.height - line.y0, line.x0, text))
        out.append((page.height, group(fragments)))
    return out


def lines_pypdf(path: Path) -> Lines:
    from pypdf import PdfReader

    out = []
    for page in PdfReader(path).pages:
        top_edge = float(page.mediabox.top)
        fragments: list[tuple[float, float, float, str]] = []

        def visit(text, cm, tm, font, size, fragments=fragments, top_edge=top_edge):
            if text.strip():
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                fragments.append((top_edge - y, top_edge - y, x, text.strip()))  # the baseline only

        page.extract_text(visitor_text=visit)
        out.append((float(page.mediabox.height), group(fragments)))
    return out


def lines_pypdfium2(path: Path) -> Lines:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    out = []
    for page in pdf:
        height = page.get_height()
        textpage = page.get_textpage()
        fragments = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            text = textpage.get_text_bounded(left, bottom, right, top).strip()
            if text:
                fragments.append((height - top, height - bottom, left, text))
        out.append((height, group(fragments)))
        textpage.close()
        page.close()
    pdf.close()
    return out


LIBRARIES: dict[str, tuple[Callable[[Path], list[str]], Callable[[Path], Lines]]] = {
    "pdfplumber": (text_pdfplumber, lines_pdfplumber),
    "pdfplumber text flow": (text_pdfplumber_flow, lines_pdfplumber),
    "pdfminer.six": (text_pdfminer, lines_pdfminer),
    "pypdf": (text_pypdf, lines_pypdf),
    "pypdf layout": (text_pypdf_layout, lines_pypdf),
    "pypdfium2": (text_pypdfium2, lines_pypdfium2),
}
PACKAGE = {"pypdf layout": "pypdf", "pdfplumber text flow": "pdfplumber"}
IMPORTS = {
    "pdfplumber": ["pdfplumber"],
    "pdfplumber text flow": ["pdfplumber"],
    "pdfminer.six": ["pdfminer.high_level", "pdfminer.layout"],
    "pypdf": ["pypdf"],
    "pypdf layout": ["pypdf"],
    "pypdfium2": ["pypdfium2"],
}


# ---------------------------------------------------------------------------------------- checks


def running_lines(pages: Lines) -> set[str]:
    """Normalised lines (digits as '#') in the top or bottom band that repeat on at least REPEATS pages."""
    seen: dict[str, int] = {}
    for height, lines in pages:
        keys = {
            re.sub(r"\d+", "#", norm(text))
            for top, text in lines
            if (top < BAND * height or top > (1 - BAND) * height) and norm(text)
        }
        for key in keys:
            seen[key] = seen.get(key, 0) + 1
    return {key for key, count in seen.items() if count >= REPEATS}


def in_order(page_text: str, passages: list[str]) -> tuple[int, bool]:
    """How many passages are on the page, and whether all are there in this order."""
    flat = norm(page_text)
    positions = [flat.find(norm(p)) for p in passages]
    found = sum(pos >= 0 for pos in positions)
    return found, found == len(passages) and positions == sorted(positions)


def measure(name: str, entry: dict, path: Path, library: str, runs: int) -> dict:
    text_of, lines_of = LIBRARIES[library]
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        pages = text_of(path)
        seconds.append(time.perf_counter() - start)
    text = "\n".join(pages)
    expect = entry.get("expect", {})
    flat = norm(text)
    snippets = expect.get("snippets", []) + expect.get("order", [])
    row = {
        "file": name,
        "library": library,
        "pages": len(pages),
        "cjk": len(CJK.findall(unicodedata.normalize("NFKC", text))),
        "radicals": len(RADICALS.findall(text)),
        "bad": len(BAD.findall(text)),
        "spaced": len(SPACED.findall(text)),
        "snippets": sum(norm(s) in flat for s in snippets),
        "snippets_expected": len(snippets),
        "missing": [s for s in snippets if norm(s) not in flat],
        "seconds": statistics.median(seconds),
    }
    if "order" in expect:
        page = expect["order_page"]
        row["order_found"], row["order_ok"] = in_order(pages[page] if page < len(pages) else "", expect["order"])
        row["order_expected"] = len(expect["order"])
    if "running" in expect:
        flagged = running_lines(lines_of(path))
        wanted = [re.sub(r"\d+", "#", norm(r)) for r in expect["running"]]
        row["running_found"] = sum(any(w in key for key in flagged) for w in wanted)
        row["running_expected"] = len(wanted)
        row["page_numbers"] = "#" in flagged  # a line that is only a page number, repeated
        row["running_other"] = sorted(key for key in flagged if key != "#" and not any(w in key for w in wanted))
    return row


def peak_memory(library: str, path: Path) -> dict:
    """MB the maximum resident set grows by while `library` extracts `path` in a fresh process (after its
    imports), and the process's peak."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", library, str(path)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def high_water_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: on Linux that survives exec, so a child
    would start from its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def child(library: str, path: str) -> None:
    quiet()
    for module in IMPORTS[library]:
        importlib.import_module(module)  # imported before the baseline: only the extraction is counted
    before = high_water_mb()
    LIBRARIES[library][0](Path(path))
    after = high_water_mb()
    print(json.dumps({"grew_mb": after - before, "peak_mb": after}))


# --------------------------------------------------------------------------------------- report


def summary(rows: list[dict], memory: dict[str, dict]) -> str:
    best: dict[str, int] = {}
    for row in rows:
        best[row["file"]] = max(best.get(row["file"], 0), row["cjk"])
    lines = [
        "| library | version | CJK | bad | radicals | gaps | snippets | order (passages) | running (other) "
        "| ms/page | peak MB |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for library in LIBRARIES:
        mine = [r for r in rows if r["library"] == library]
        if not mine:
            continue
        cjk = sum(r["cjk"] for r in mine)
        reference = sum(best[r["file"]] for r in mine) or 1
        running = [r for r in mine if "running_found" in r]
        order = ", ".join(
            f"{r['file'].split('-')[0]} {'ok' if r['order_ok'] else 'broken'} "
            f"({r['order_found']}/{r['order_expected']})"
            for r in mine
            if "order_ok" in r
        )
        cells = [
            library,
            version(PACKAGE.get(library, library)),
            f"{100 * cjk / reference:.1f} %",
            str(sum(r["bad"] for r in mine)),
            str(sum(r["radicals"] for r in mine)),
            f"{100 * sum(r['spaced'] for r in mine) / max(cjk, 1):.2f} %",
            f"{sum(r['snippets'] for r in mine)}/{sum(r['snippets_expected'] for r in mine)}",
            order or "-",
            f"{sum(r['running_found'] for r in running)}/{sum(r['running_expected'] for r in running)}"
            f" ({sum(len(r['running_other']) for r in running)})",
            f"{1000 * statistics.mean(r['seconds'] / max(r['pages'], 1) for r in mine):.0f}",
            f"{memory[library]['grew_mb']:.0f} ({memory[library]['peak_mb']:.0f})" if library in memory else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_file(rows: list[dict]) -> str:
    libraries = [lib for lib in LIBRARIES if any(r["library"] == lib for r in rows)]
    lines = ["| file | pages | " + " | ".join(libraries) + " |", "|---|---:|" + "---|" * len(libraries)]
    for name in dict.fromkeys(r["file"] for r in rows):
        mine = {r["library"]: r for r in rows if r["file"] == name}
        cells = []
        for library in libraries:
            row = mine[library]
            cell = f"{1000 * row['seconds'] / max(row['pages'], 1):.0f} ms/p"
            cell += f", {row['snippets']}/{row['snippets_expected']}"
            if row["spaced"]:
                cell += f", gaps {100 * row['spaced'] / max(row['cjk'], 1):.1f} %"
            if row["bad"]:
                cell += f", bad {row['bad']}"
            if row["radicals"]:
                cell += f", radicals {row['radicals']}"
            cells.append(cell)
        lines.append(f"| {name} | {mine[libraries[0]]['pages']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed extractions per file and library (median)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--library", action="append", choices=list(LIBRARIES), help="only these libraries")
    parser.add_argument("--only", action="append", help="only these files (names from documents.toml)")
    parser.add_argument("--show", metavar="FILE:PAGE", help="print each library's text of one page (0-based)")
    parser.add_argument("--verbose", action="store_true", help="also list missed passages and flagged lines")
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet()
    if args.child:
        child(*args.child)
        return 0
    libraries = args.library or list(LIBRARIES)
    documents = present(("pdf",))
    if args.only:
        documents = [d for d in documents if d[0] in args.only]
    if args.show:
        name, page = args.show.rsplit(":", 1)
        path = next((p for n, _, p in documents if n == name), None)
        if path is None:
            print(f"{name} is not a PDF present in bench/documents.toml", file=sys.stderr)
            return 1
        for library in libraries:
            print(f"===== {library}\n{LIBRARIES[library][0](path)[int(page)]}")
        return 0
    if not documents:
        print("no PDF to measure", file=sys.stderr)
        return 1
    rows = []
    for name, entry, path in documents:
        for library in libraries:
            rows.append(measure(name, entry, path, library, args.runs))
            print(f"measured {name} with {library}", file=sys.stderr)
    memory: dict[str, dict] = {}
    if not args.no_memory:
        name, entry, path = max(documents, key=lambda d: d[1].get("pages", 0))
        memory = {library: peak_memory(library, path) for library in libraries}
    print(summary(rows, memory))
    if memory:
        print(f"\npeak MB: extracting {name} ({entry.get('pages')} pages) in a fresh process")
    print()
    print(per_file(rows))
    if args.verbose:
        for row in rows:
            if row["missing"] or row.get("running_other"):
                print(f"\n{row['file']} / {row['library']}")
                for passage in row["missing"]:
                    print(f"  missed:  {passage}")
                for key in row.get("running_other", []):
                    print(f"  flagged: {key}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peak_mb": memory}, ensure_ascii=False, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
