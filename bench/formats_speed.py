"""Indexing speed per document format, and a 100-page PDF: extraction time against embedding time, and the peak
memory of each build (each in a fresh process, with an empty embedding cache).

    .venv/bin/python bench/formats_speed.py          # about 10 minutes on 2 cores; needs bench/fetch_documents.py

Inputs: the real documents of bench/documents.toml by format (the 85-page CSRC table is left out: 3,500 table
rows would take most of the run, and its extraction time is in the extraction table already), the bundled
.txt corpus, and a 104-page PDF made by PDFium from the 13-page Beijing government work report eight times
over. Results go to bench/results/formats_speed.jsonl and the table in docs/formats.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium
from fetch_documents import present
from report import ROOT, save, update_table
from wenda.index.builder import build_index
from wenda.index.config import Settings
from wenda.index.embeddings import BuiltinE5
from wenda.index.formats import reader_for
from wenda.index.loader import discover

DOC = ROOT / "docs" / "formats.md"
LEFT_OUT = {"csrc-listed-company-industry-classification.pdf"}
HUNDRED_PAGES = "beijing-2024-government-work-report.pdf"


def one(name: str, folder: Path) -> dict:
    """Extract every document of `folder` (timed), then build its index from nothing (timed)."""
    paths = discover(folder)
    extraction, units, size = 0.0, 0, 0
    for path in paths:
        data = path.read_bytes()
        started = time.perf_counter()
        units += len(reader_for(path.name, data[:4096]).read(data, path.name).pages)
        extraction += time.perf_counter() - started
        size += len(data)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus=folder, index_dir=Path(tmp) / "index")
        started = time.perf_counter()
        report = build_index(settings, BuiltinE5(), rebuild=True, progress=False)
        seconds = time.perf_counter() - started
    return {
        "input": name,
        "documents": len(paths),
        "units": units,
        "mb": round(size / 2**20, 2),
        "chunks": report.total_chunks,
        "extraction_s": round(extraction, 2),
        "build_s": round(seconds, 1),
        "chunks_per_s": round(report.total_chunks / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def inputs(work: Path) -> dict[str, Path]:
    """A folder per measured input: the real documents by format, the .txt corpus, the 104-page PDF."""
    folders: dict[str, Path] = {}
    for name, entry, path in present(("pdf", "docx", "epub", "html")):
        if name in LEFT_OUT:
            continue
        folder = work / entry["format"]
        folder.mkdir(exist_ok=True)
        shutil.copy(path, folder / name)  # a copy: a link to a file outside the corpus is not indexed
        folders[entry["format"]] = folder
        if name == HUNDRED_PAGES:
            big = work / "pdf-104-pages"
            big.mkdir()
            source, pdf = pdfium.PdfDocument(path), pdfium.PdfDocument.new()
            for _ in range(8):
                pdf.import_pages(source)
            pdf.save(big / "beijing-x8.pdf")
            folders["pdf, 104 pages"] = big
    folders["text (bundled corpus)"] = ROOT / "corpus"
    return folders


COLUMNS = [
    ("input", lambda r: r["input"]),
    ("documents", lambda r: str(r["documents"])),
    ("pages / chapters", lambda r: str(r["units"]) if r["input"].startswith(("pdf", "epub")) else "–"),
    ("MB", lambda r: f"{r['mb']:.2f}"),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("extraction", lambda r: f"{r['extraction_s']:.2f} s"),
    ("whole build", lambda r: f"{r['build_s']:.1f} s"),
    ("extraction share", lambda r: f"{r['extraction_s'] / r['build_s']:.1%}"),
    ("chunks/s", lambda r: f"{r['chunks_per_s']}"),
    ("peak RSS", lambda r: f"{r['peak_rss_mb']} MB"),
]


def table(rows: list[dict]) -> None:
    update_table("formats_speed", COLUMNS, rows, doc=DOC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child: one input in a fresh process, so its peak memory is its own
        print(json.dumps(one(args.one[0], Path(args.one[1]))))
        return
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in inputs(Path(tmp)).items():
            done = subprocess.run(
                [sys.executable, __file__, "--one", name, str(folder)], capture_output=True, text=True, check=True
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(row)
            rows = save("formats_speed", row, ("input",))
    table(rows)


if __name__ == "__main__":
    main()
