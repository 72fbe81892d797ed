"""FAISS index types: exact Flat while small, IVF with 8-bit scalar quantization past a measured size.

Both keep chunk ids, so a changed file's vectors can be removed and re-added. IVF-SQ8 stores 384 bytes
a vector (Flat: 1,536) and searches only `nprobe` of its lists; HNSW would be faster still but cannot
remove vectors. Numbers behind the defaults are in docs/benchmarks.md (bench/vector_search.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from . import ivf_file
from .mapped import mappings, release
from .scratch import VectorFile

# Past this many vectors exact search stops fitting the query budget on 2 cores, so the index is rebuilt
# as IVF-SQ8. Measured (bench/query_profile.py): exact top-100 search took 13.5 ms of a 32.5 ms query (p50) at 93k,
# where the budget is 30 ms; at 50k it costs ~5 ms next to ~14 ms for embedding the question.
FLAT_LIMIT = 50_000
RECALL_TARGET = 0.98  # recall@10 against exact search that nprobe is tuned for
TUNING_QUERIES = 200
SEED = 0
ENCODER_SAMPLE = 32_768  # vectors whose residuals set the 8-bit ranges (50 MB, and as much for their residuals)
# Vectors the lists' centroids are trained on: 64 a list up to this cap (100 MB of float32, reached at ~65k
# vectors), so a build's memory stops growing with the corpus; faiss asks for 39 a list, the cap leaves at least 32
# (nlist_for: ≤ 2,048 lists). Twice this cap (4,096 lists) made the training sample the build's largest part of
# memory that grows with the corpus: 124 MB at 100k vectors, 201 MB from ~260k on (docs/scale-out.md).
TRAIN_SAMPLE = 65_536
LEAST_PER_LIST = 32
BLOCK = 50_000  # vectors added, or scanned for the exact answers, at a time: 77 MB of float32
# Queries searched at a time in a memory-mapped IVF index before its pages are let go: one, since a question's
# nprobe lists are already a fair share of a big file (at a million hash-embedded vectors, 8 at a time still held
# 250 MB of the 400 MB file during the vectors stage: bench/million.py, resident less anonymous).
MAPPED_QUERIES = 1


def new_flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def is_ivf(index: faiss.Index) -> bool:
    return isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def nlist_for(count: int) -> int:
    """About 4·√n lists (the usual balance of list scan cost against centroid scan cost), with at least
    LEAST_PER_LIST training vectors each in the capped sample (2,048 lists: reached at ~262k vectors)."""
    return max(16, min(int(4 * math.sqrt(count)), TRAIN_SAMPLE // LEAST_PER_LIST))


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored in an IDMap2-over-Flat index."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
    return ids, vectors


def build_ivf(source: VectorFile, path: Path, scratch: Path) -> tuple[faiss.Index, float]:
    """IVF-SQ8 of every vector in `source`, trained on a sample, written to `path` list by list (`ivf_file`, with its
    positions file) and opened from it memory-mapped, with nprobe tuned (and stored in the file), and the recall@10
    against exact search it was tuned to. Memory holds the sample, one block and 8 bytes a chunk id: not the float
    vectors, not their codes."""
    nlist = nlist_for(len(source))
    quantizer = faiss.IndexFlatIP(source.dim)
    ivf = faiss.IndexIVFScalarQuantizer(
        quantizer, source.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.cp.min_points_per_centroid = LEAST_PER_LIST  # the capped sample is deliberate: no warning from faiss
    rng = np.random.default_rng(SEED)
    size = min(len(source), 64 * nlist, TRAIN_SAMPLE)
    sample = source.rows(rng.choice(len(source), size, replace=False))
    # The centroids from the whole sample (as ivf.train would), the 8-bit ranges from the residuals of a part of
    # it (random already): the residuals of the whole sample would be a second copy of it in memory.
    ivf.train_q1(len(sample), faiss.swig_ptr(sample), False, faiss.METRIC_INNER_PRODUCT)
    encoder_sample = sample[:ENCODER_SAMPLE].copy()
    del sample  # before the encoder's training makes its residuals
    ivf.train(encoder_sample)  # the quantizer is trained: this trains the 8-bit encoder only
    del encoder_sample
    encoded = ivf_file.Encoded(scratch, ivf.code_size)
    try:
        ivf_file.encode(ivf, source.blocks(BLOCK), encoded)
        ivf_file.write(path, ivf, encoded)
    finally:
        encoded.close()
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)  # its own class already (downcasting would free it)
    nprobe, measured = tune_nprobe(index, source, path)
    ivf_file.set_nprobe(path, ivf, nprobe)
    index.nprobe = nprobe
    return for_queries(index), measured


def search_mapped(
    index: faiss.Index, queries: np.ndarray, k: int, mapped: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`index.search`, a few queries at a time when `index` is memory-mapped from the file `mapped`, letting the
    pages read go after each (`mapped.release`): one search over many queries reads most lists, which would
    stay resident."""
    if mapped is None or not is_ivf(index):
        return index.search(queries, k)
    scores, ids = [], []
    ranges = mappings(mapped)  # found once: the file stays mapped while `index` lives
    for begin in range(0, len(queries), MAPPED_QUERIES):
        found = index.search(queries[begin : begin + MAPPED_QUERIES], k)
        scores.append(found[0])
        ids.append(found[1])
        release(ranges)
    return np.concatenate(scores), np.concatenate(ids)


def tune_nprobe(ivf: faiss.IndexIVF, source: VectorFile, mapped: Path | None = None, k: int = 10) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose recall@k against exact search reaches RECALL_TARGET, or at which
    recall stops rising (8-bit codes cap it below the target on data with many near-equal neighbours), with the
    recall@k it gives.

    Queries are stored vectors, left out of their own answers: held-out points of the same distribution. The
    exact answers are found a block of `source` at a time; `ivf` is searched as `search_mapped` does."""
    rng = np.random.default_rng(SEED + 1)
    rows = rng.choice(len(source), min(TUNING_QUERIES, len(source)), replace=False)
    queries = source.rows(rows)
    ids = source.all_ids()
    truth = _without_self(exact_search(queries, source, k + 1), ids[rows], k)
    nprobe, previous = 1, 0.0
    while nprobe < ivf.nlist:
        ivf.nprobe = nprobe
        _, found = search_mapped(ivf, queries, k + 1, mapped)
        current = recall(_without_self(found, ids[rows], k), truth)
        if current >= RECALL_TARGET or current - previous < 0.002:
            return nprobe, current
        nprobe, previous = nprobe * 2, current
    ivf.nprobe = ivf.nlist
    _, found = search_mapped(ivf, queries, k + 1, mapped)
    return ivf.nlist, recall(_without_self(found, ids[rows], k), truth)


def exact_search(queries: np.ndarray, source: VectorFile, k: int) -> np.ndarray:
    """Ids of the `k` vectors of `source` with the highest inner product with each query, best first: each block's
    top k (faiss.knn, which scores in small tiles) merged into the best so far."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for ids, vectors in source.blocks(BLOCK):
        scores, rows = faiss.knn(queries, vectors, min(k, len(ids)), metric=faiss.METRIC_INNER_PRODUCT)
        scores = np.concatenate([best_scores, scores], axis=1)
        owners = np.concatenate([best_ids, ids[rows]], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(owners, top, 1)
    return best_ids


def _without_self(neighbours: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    return np.array([[n for n in found if n != mine][:k] for found, mine in zip(neighbours, own, strict=True)])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k that the approximate top-k also holds."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def for_queries(index: faiss.Index) -> faiss.Index:
    """Search settings that are not stored in the file: one query's IVF lists are split across threads
    (parallel_mode 1), which halved single-query latency on 2 cores."""
    if is_ivf(index):
        faiss.downcast_index(index).parallel_mode = 1
    return index


def describe(index: faiss.Index, tuned: float | None = None, before: dict | None = None) -> dict:
    """The manifest's record of the index type; for IVF, the recall@10 against exact search its nprobe was tuned
    to on held-out stored vectors (`tuned` when just built, else the earlier generation's record, `before`)."""
    if is_ivf(index):
        ivf = faiss.downcast_index(index)
        record = {"type": "ivf-sq8", "nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
        if tuned is None and before and before.get("type") == "ivf-sq8":
            tuned = before.get("tuned_recall@10")
        return record | ({"tuned_recall@10": round(tuned, 4)} if tuned is not None else {})
    return {"type": "flat"}


def becomes_ivf(base: faiss.Index | None, total: int) -> bool:
    """Whether the next generation, `total` vectors, needs a new IVF-SQ8 index: Flat below FLAT_LIMIT, an IVF
    one stays IVF and takes its new vectors into its lists."""
    return total >= FLAT_LIMIT and not (base is not None and is_ivf(base))
