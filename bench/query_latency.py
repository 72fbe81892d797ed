"""Query latency: the dense-only path (embed, FAISS, fetch) against the full hybrid `Retriever.ask`.

    .venv/bin/python bench/query_latency.py [--index-dir DIR] [--questions FILE] [--repeat N]

Prints a table and writes bench/results/query_latency.json. Warm, in process, one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from index.config import Settings
from index.passages import read_jsonl
from index.tokenization import to_simplified
from retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1000
    return {f"p{p}": round(float(np.percentile(ms, p)), 2) for p in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env(index_dir=args.index_dir)
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
        "index": str(settings.index_dir),
        "passages": len(retriever.snapshot),
        "questions": len(questions) * args.repeat,
        "dense_only_ms": percentiles(dense),
        "hybrid_ms": percentiles(full),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
    }
    result["overhead_p50_ms"] = round(result["hybrid_ms"]["p50"] - result["dense_only_ms"]["p50"], 2)
    out = ROOT / "bench" / "results" / "query_latency.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
