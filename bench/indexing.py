"""Indexing throughput (chunks/s) and peak memory of one full build, with an empty embedding cache.

    .venv/bin/python bench/indexing.py                       # the seed corpus (corpus/)
    .venv/bin/python bench/indexing.py --passages ../shared/data/xwlb.corpus.jsonl.gz --limit 10000
    .venv/bin/python bench/indexing.py --passages ../shared/data/xwlb.corpus.jsonl.gz --index-dir ../xwlb92k

With --index-dir the index is kept (for bench/query_latency.py) and an interrupted build resumes from its
embedding cache when run again; the first run's figure is the one to report.
Run each in a fresh process: peak memory is the process's maximum resident set. Appends a JSON line
to bench/results/indexing.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

from index import builder
from index.builder import build_index
from index.config import Settings
from index.embeddings import create_embedder
from index.passages import passage_files

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--passages", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--batch-size", type=int, default=builder.BATCH_SIZE)
    parser.add_argument("--index-dir", type=Path, help="keep the index here (default: a temporary folder)")
    parser.add_argument("--model", default="builtin", help="embedding model spec, as WENDA_EMBEDDING_MODEL")
    args = parser.parse_args()
    files = passage_files(args.passages, args.limit) if args.passages else None
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus=args.corpus, index_dir=args.index_dir or Path(tmp) / "index")
        embedder = create_embedder(args.model)
        started = time.perf_counter()
        report = build_index(settings, embedder, rebuild=True, progress=True, files=files, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
    row = {
        "input": str(args.passages or args.corpus) + (f" (first {args.limit})" if args.limit else ""),
        "chunks": report.total_chunks,
        "seconds": round(seconds, 1),
        "chunks_per_second": round(report.total_chunks / seconds, 1),
        "batch_size": args.batch_size,
        "model": args.model,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
    }
    print(json.dumps(row))
    with (ROOT / "bench" / "results" / "indexing.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
