"""Indexing throughput (chunks/s) and peak memory of one full build, with an empty embedding cache.

    .venv/bin/python bench/indexing.py                       # the seed corpus (corpus/)
    .venv/bin/python bench/indexing.py --passages ../shared/data/xwlb.corpus.jsonl.gz --limit 10000
    .venv/bin/python bench/indexing.py --passages ../shared/data/xwlb.corpus.jsonl.gz --index-dir ../xwlb92k

With --index-dir the index is kept (for bench/query_latency.py) and an interrupted build resumes from its
embedding cache when run again: the row then says how many chunks came from the cache, and chunks/s counts
only the chunks embedded in this run (over the whole run's time).
Run each in a fresh process: peak memory is the process's maximum resident set. Keeps the result in
bench/results/indexing.jsonl and rewrites the indexing table of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from report import save, update_table
from wenda.index.builder import BATCH_SIZE, build_index
from wenda.index.config import Settings
from wenda.index.embeddings import create_embedder
from wenda.index.passages import passage_files

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("input", lambda r: r["input"]),
    ("model", lambda r: r["model"]),
    ("batch", lambda r: str(r["batch_size"])),
    ("chunks", lambda r: f"{r['chunks']:,}" + (f" ({r['cached']:,} cached)" if r.get("cached") else "")),
    ("time", lambda r: f"{r['seconds']:,.1f} s"),
    ("embedded/s", lambda r: f"{r['chunks_per_second']}"),
    ("peak RSS", lambda r: f"{r['peak_rss_mb']:,.0f} MB"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("indexing", COLUMNS, sorted(rows, key=lambda r: (r["chunks"], r["batch_size"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--passages", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--index-dir", type=Path, help="keep the index here (default: a temporary folder)")
    parser.add_argument("--model", default="builtin", help="embedding model spec, as WENDA_EMBEDDING_MODEL")
    parser.add_argument("--device", default="cpu", help="e.g. cuda (as WENDA_EMBEDDING_DEVICE)")
    args = parser.parse_args()
    files = passage_files(args.passages, args.limit) if args.passages else None
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus=args.corpus, index_dir=args.index_dir or Path(tmp) / "index")
        embedder = create_embedder(args.model, device=args.device)
        started = time.perf_counter()
        report = build_index(settings, embedder, rebuild=True, progress=True, files=files, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
    corpus = args.corpus.resolve()
    source = str(args.passages or (corpus.relative_to(ROOT) if corpus.is_relative_to(ROOT) else corpus))
    row = {
        "input": source + (f" (first {args.limit})" if args.limit else ""),
        "model": args.model + (f" on {args.device}" if args.device != "cpu" else ""),
        "batch_size": args.batch_size,
        "chunks": report.total_chunks,
        "embedded": report.embedded_chunks,
        "cached": report.cached_chunks,
        "seconds": round(seconds, 1),
        "chunks_per_second": round(report.embedded_chunks / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(row))
    table(save("indexing", row, key=("input", "model", "batch_size", "embedded")))


if __name__ == "__main__":
    main()
