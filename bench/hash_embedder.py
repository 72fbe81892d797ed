"""The model-free test embedder (`WENDA_EMBEDDER=hash`, index/hash_embedder.py) against the built-in model:
passages embedded a second on the first `--limit` xwlb news paragraphs, runs alternating, medians of `--runs`.

    .venv/bin/python bench/hash_embedder.py [--limit 1000] [--runs 3]

Keeps the result in bench/results/hash_embedder.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time

from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.embeddings import create_embedder  # noqa: E402

XWLB = ROOT.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with gzip.open(XWLB, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line, _ in zip(handle, range(args.limit), strict=False)]
    embedders = {"hash": create_embedder("hash"), "builtin": create_embedder("builtin")}
    for embedder in embedders.values():
        embedder.embed_passages(texts[:16])  # load and warm up
    speeds: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(args.runs):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            for start in range(0, len(texts), 256):
                embedder.embed_passages(texts[start : start + 256])
            speeds[name].append(len(texts) / (time.perf_counter() - started))
    row = {
        "passages": len(texts),
        "hash_per_s": round(statistics.median(speeds["hash"])),
        "builtin_per_s": round(statistics.median(speeds["builtin"]), 1),
        "builtin_engine": embedders["builtin"].engine,
    }
    row["ratio"] = round(row["hash_per_s"] / row["builtin_per_s"])
    print(row, flush=True)
    rows = save("hash_embedder", row, ())
    update_table(
        "hash_embedder",
        [
            ("xwlb paragraphs", lambda r: f"{r['passages']:,}"),
            ("hash embedder, passages/s", lambda r: f"{r['hash_per_s']:,}"),
            ("built-in model, passages/s", lambda r: f"{r['builtin_per_s']} ({r['builtin_engine']})"),
            ("ratio", lambda r: f"{r['ratio']}×"),
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
