"""Search-only latency, memory per vector and recall@10 of Flat against IVF-SQ8 at 100k and 1M vectors.

    .venv/bin/python bench/vector_search.py [--sizes 100000 1000000] [--seed-index DIR]

Vectors are synthetic but shaped like real ones: mixtures of two real e5 passage vectors from
--seed-index (default: the CMRC eval index) plus noise, normalized; queries are drawn the same way and
are not in the index. IVF searches with the settings a serving process uses (`vectors.for_queries`).
Keeps results in bench/results/vector_search.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from report import ms, percentiles, save, update_table
from wenda.index import vectors
from wenda.index.scratch import VectorFile
from wenda.index.store import open_snapshot

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("vectors", lambda r: f"{r['vectors']:,}"),
    ("index", lambda r: {"flat": "Flat (exact)", "ivf_sq8": "IVF-SQ8, nprobe tuned"}.get(r["kind"], "IVF-SQ8")),
    ("search p50 / p95 / p99", lambda r: ms(r["search_ms"])),
    ("bytes per vector", lambda r: f"{r['bytes_per_vector']:,.0f}"),
    ("nlist / nprobe", lambda r: f"{r['nlist']:,} / {r['nprobe']:,}" if "nlist" in r else "—"),
    ("recall@10", lambda r: f"{r.get('recall_at_10', 1)}"),
    ("command", lambda r: f"`{r['command']}`"),
]


def synthetic(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    a, b = real[rng.integers(0, len(real), count)], real[rng.integers(0, len(real), count)]
    mix = rng.uniform(0.5, 1.0, (count, 1)).astype(np.float32)
    data = mix * a + (1 - mix) * b + rng.normal(0, 0.02, a.shape).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def timed_search(index: faiss.Index, queries: np.ndarray, k: int = 10) -> tuple[dict, np.ndarray]:
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        _, ids = index.search(query[None, :], k)
        times.append(time.perf_counter() - started)
        found.append(ids[0])
    return percentiles(times), np.array(found)


def file_bytes(index: faiss.Index) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "i.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path)


def table(rows: list[dict]) -> None:
    """Lines per size: exact Flat, IVF-SQ8 as tuned, then IVF-SQ8 at any other nprobe timed."""
    lines = [
        {**r[kind], "vectors": r["vectors"], "kind": kind, "machine": r["machine"], "command": r["command"]}
        for r in sorted(rows, key=lambda r: r["vectors"])
        for kind in r
        if kind == "flat" or kind.startswith("ivf_sq8")
    ]
    update_table("vector_search", COLUMNS, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed-index", type=Path, default=Path("/work/evalidx/cmrc20k"))
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[], help="also time these nprobe values")
    args = parser.parse_args()
    snapshot = open_snapshot(args.seed_index, mmap=False)
    real = np.stack([snapshot.index.reconstruct(int(i)) for i in faiss.vector_to_array(snapshot.index.id_map)])
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        data = synthetic(real, size, rng)
        ids = np.arange(size, dtype=np.int64)
        queries = synthetic(real, args.queries, rng)
        flat = vectors.new_flat(data.shape[1])
        flat.add_with_ids(data, ids)
        flat_latency, truth = timed_search(flat, queries)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            source = VectorFile(Path(scratch) / "vectors.f32", data.shape[1])
            source.append(ids, data)
            ivf, _ = vectors.build_ivf(source, Path(scratch) / "ivf.faiss", Path(scratch))
            source.close()
            build_seconds = time.perf_counter() - started
            ivf = vectors.for_queries(faiss.read_index(str(Path(scratch) / "ivf.faiss")))  # in memory: the folder goes
        ivf_latency, found = timed_search(ivf, queries)
        row = {
            "vectors": size,
            "flat": {"search_ms": flat_latency, "bytes_per_vector": round(file_bytes(flat) / size, 1)},
            "ivf_sq8": {
                "search_ms": ivf_latency,
                "bytes_per_vector": round(file_bytes(ivf) / size, 1),
                "nlist": int(ivf.nlist),
                "nprobe": int(ivf.nprobe),
                "recall_at_10": round(vectors.recall(found, truth), 4),
                "build_seconds": round(build_seconds, 1),
            },
        }
        bytes_per_vector = row["ivf_sq8"]["bytes_per_vector"]
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            latency, found = timed_search(ivf, queries)
            row[f"ivf_sq8_nprobe_{nprobe}"] = {
                "search_ms": latency,
                "bytes_per_vector": bytes_per_vector,
                "nlist": int(ivf.nlist),
                "nprobe": nprobe,
                "recall_at_10": round(vectors.recall(found, truth), 4),
            }
        row["threads"] = faiss.omp_get_max_threads()
        print(json.dumps(row), flush=True)
        rows = save("vector_search", row, key=("vectors",))
        del flat, ivf, data
    table(rows)


if __name__ == "__main__":
    main()
