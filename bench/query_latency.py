"""Query latency: the dense-only path (embed, FAISS, fetch) against the full hybrid `Retriever.ask`.

    .venv/bin/python bench/query_latency.py [--index-dir DIR] [--questions FILE] [--repeat N]

Warm, in process, one thread. Also records the serving process's memory (resident set) after the run.
Keeps the result in bench/results/query_latency.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from report import ms, percentiles, rss_mb, save, update_table
from wenda.index.config import Settings
from wenda.index.passages import read_jsonl
from wenda.index.tokenization import to_simplified
from wenda.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("index", lambda r: r["index"]),
    ("chunks", lambda r: f"{r['passages']:,}"),
    ("vectors", lambda r: r.get("vector_index", "—")),
    ("questions", lambda r: f"{r['questions']:,}"),
    ("dense-only p50 / p95 / p99", lambda r: ms(r["dense_only_ms"])),
    ("hybrid p50 / p95 / p99", lambda r: ms(r["hybrid_ms"])),
    ("serving RSS", lambda r: f"{r['rss_mb']:,.0f} MB" if "rss_mb" in r else "—"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("query_latency", COLUMNS, sorted(rows, key=lambda r: r["passages"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--label", help="how the table names the index (default: its folder)")
    args = parser.parse_args()
    # every question is asked --repeat times: the model must run each time, not the remembered vectors
    settings = Settings.from_env(index_dir=args.index_dir, query_memory=0)
    retriever = Retriever(settings)
    questions = [q.get("q") or q["question"] for q in read_jsonl(args.questions)]
    retriever.ask(questions[0], args.k)  # warm up: jieba dictionary, OpenCC, caches

    dense, full = [], []
    for _ in range(args.repeat):
        for question in questions:
            started = time.perf_counter()
            vector = retriever.embedder.embed_queries([to_simplified(question)])[0]
            hits = retriever.snapshot.search(vector, args.k)
            retriever.snapshot.records([chunk_id for chunk_id, _ in hits])
            dense.append(time.perf_counter() - started)
            started = time.perf_counter()
            retriever.ask(question, args.k)
            full.append(time.perf_counter() - started)
    result = {
        "index": args.label or str(settings.index_dir),
        "passages": len(retriever.snapshot),
        "vector_index": retriever.snapshot.manifest["vector_index"]["type"],
        "questions": len(questions) * args.repeat,
        "dense_only_ms": percentiles(dense),
        "hybrid_ms": percentiles(full),
        "rss_mb": rss_mb(),
    }
    print(json.dumps(result, indent=1))
    table(save("query_latency", result, key=("index",)))


if __name__ == "__main__":
    main()
