"""Search-only latency, memory per vector and recall@10 of Flat against IVF-SQ8 at 100k and 1M vectors.

    .venv/bin/python bench/vector_search.py [--sizes 100000 1000000] [--seed-index DIR]

Vectors are synthetic but shaped like real ones: mixtures of two real e5 passage vectors from
--seed-index (default: the CMRC eval index) plus noise, normalized; queries are drawn the same way and
are not in the index. Writes bench/results/vector_search.json.
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

from index import vectors
from index.store import open_snapshot

ROOT = Path(__file__).resolve().parent.parent


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
    ms = np.array(times) * 1000
    return {f"p{p}": round(float(np.percentile(ms, p)), 2) for p in (50, 95, 99)}, np.array(found)


def file_bytes(index: faiss.Index) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "i.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed-index", type=Path, default=Path("/work/evalidx/cmrc20k"))
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    snapshot = open_snapshot(args.seed_index, mmap=False)
    real = np.stack([snapshot.index.reconstruct(int(i)) for i in faiss.vector_to_array(snapshot.index.id_map)])
    rng = np.random.default_rng(0)
    results = []
    for size in args.sizes:
        data = synthetic(real, size, rng)
        ids = np.arange(size, dtype=np.int64)
        queries = synthetic(real, args.queries, rng)
        flat = vectors.new_flat(data.shape[1])
        flat.add_with_ids(data, ids)
        flat_latency, truth = timed_search(flat, queries)
        started = time.perf_counter()
        ivf = vectors.build_ivf(ids, data)
        build_seconds = time.perf_counter() - started
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
        print(json.dumps(row), flush=True)
        results.append(row)
        del flat, ivf, data
    out = ROOT / "bench" / "results" / "vector_search.json"
    out.write_text(json.dumps({"threads": faiss.omp_get_max_threads(), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
