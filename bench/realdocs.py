"""Real documents nobody here wrote (../shared/realdocs, from public parser test suites): the build account and
the FACTS questions with their evidence in the top 3, citing the right page.

    .venv/bin/python bench/realdocs.py [--folder ../shared/realdocs] [--seed]

Copies the files (without SOURCES.tsv and FACTS.tsv, which hold the answers) into a work folder, indexes them
(`--seed`: with the five bundled articles beside them, as a user's mixed folder), prints every question
with the rank of its evidence, and writes the summary row to docs/benchmarks.md ("Real documents"). Exits 1
below the targets: 90 % of questions with the evidence in the top 3, 95 % of text-layer PDFs indexed.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from pathlib import Path

from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.builder import build_index  # noqa: E402
from wenda.index.config import EVAL_CACHE, Settings  # noqa: E402
from wenda.index.embeddings import embedder_for  # noqa: E402
from wenda.index.store import open_snapshot  # noqa: E402
from wenda.retrieval import realdocs  # noqa: E402
from wenda.retrieval.benchsets import WORK  # noqa: E402
from wenda.retrieval.retriever import Retriever  # noqa: E402

COLUMNS = [
    ("set", lambda r: r["set"]),
    ("files", lambda r: str(r["files"])),
    ("indexed", lambda r: str(r["indexed"])),
    ("skipped", lambda r: str(r["skipped"])),
    ("of them OCRed", lambda r: str(r["ocr"])),
    ("text-layer PDFs indexed", lambda r: f"{r['text_pdfs_indexed']}/{r['text_pdfs']}"),
    ("evidence in top 3", lambda r: f"{r['top3']}/{r['questions']}"),
    ("right page", lambda r: f"{r['right_page']}/{r['questions']}"),
    ("build s", lambda r: f"{r['build_seconds']:.0f}"),
    ("chunks embedded / in all", lambda r: f"{r['embedded']}/{r['chunks']}"),
]


def kinds(folder: Path) -> dict[str, str]:
    path = folder / "SOURCES.tsv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["file"]: row["kind"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=realdocs.REALDOCS)
    parser.add_argument("--seed", action="store_true", help="the five bundled articles beside the real files")
    args = parser.parse_args()
    name = f"realdocs-{args.folder.name}" + ("-seed" if args.seed else "")
    corpus = WORK / f"{name}-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    files = realdocs.documents(args.folder) + (sorted((ROOT / "corpus").glob("*.txt")) if args.seed else [])
    realdocs.copy_corpus(corpus, files)
    cache = {} if os.environ.get("WENDA_EMBEDDING_CACHE") else {"cache_path": EVAL_CACHE}
    settings = Settings.from_env(corpus=corpus, index_dir=WORK / name, **cache)
    embedder = embedder_for(settings)
    started = time.perf_counter()
    # rebuilt from the files every run (readers change); vectors and OCR from the caches, as the last column says
    built = build_index(settings, embedder, rebuild=True, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    snapshot = open_snapshot(settings.index_dir)
    account = {entry["source"]: entry for entry in snapshot.account()}
    snapshot.close()
    retriever = Retriever(settings, embedder)
    results = [realdocs.check(retriever, fact) for fact in realdocs.facts(args.folder)]
    for result in results:
        where = f"rank {result.rank}" if result.rank else "MISSED"
        page = "" if result.right_page else f" (cites page {result.page}, evidence on {result.fact.page})"
        print(f"{where:>7}{page}  {result.fact.file}: {result.fact.question}")
    kind = kinds(args.folder)
    text_pdfs = [f for f, k in kind.items() if k == "pdf-text" and f in account]
    row = {
        "set": args.folder.name + (" + seed" if args.seed else ""),
        "files": len(account),
        "indexed": sum(e["status"] == "indexed" for e in account.values()),
        "skipped": sum(e["status"] == "skipped" for e in account.values()),
        "ocr": sum(e["ocr"] for e in account.values()),
        "text_pdfs": len(text_pdfs),
        "text_pdfs_indexed": sum(account[f]["status"] == "indexed" for f in text_pdfs),
        "questions": len(results),
        "top3": sum(r.rank is not None for r in results),
        "right_page": sum(r.rank is not None and r.right_page for r in results),
        "build_seconds": seconds,
        "embedded": built.embedded_chunks,
        "chunks": built.total_chunks,
    }
    for source, entry in account.items():
        if entry["status"] == "skipped":
            print(f"skipped {source}: {entry['reason']}")
    print(row)
    update_table("realdocs", COLUMNS, save("realdocs", row, ("set",)))
    ok = row["top3"] >= 0.9 * row["questions"] and row["text_pdfs_indexed"] >= 0.95 * max(row["text_pdfs"], 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
