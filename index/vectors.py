"""FAISS index types: exact Flat while small, IVF with 8-bit scalar quantization past a measured size.

Both keep chunk ids, so a changed file's vectors can be removed and re-added. IVF-SQ8 stores 384 bytes
a vector (Flat: 1,536) and searches only `nprobe` of its lists; HNSW would be faster still but cannot
remove vectors. Numbers behind the defaults are in docs/benchmarks.md (bench/vector_search.py).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

# Past this many vectors exact search stops fitting the query budget on 2 cores, so the index is rebuilt
# as IVF-SQ8. Measured (bench/query_profile.py): exact top-100 search took 13.5 ms of a 32.5 ms query (p50) at 93k,
# where the budget is 30 ms; at 50k it costs ~5 ms next to ~14 ms for embedding the question.
FLAT_LIMIT = 50_000
RECALL_TARGET = 0.98  # recall@10 against exact search that nprobe is tuned for
TUNING_QUERIES = 200
SEED = 0


def new_flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def is_ivf(index: faiss.Index) -> bool:
    return isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def nlist_for(count: int) -> int:
    """About 4·√n lists: the usual balance of list scan cost against centroid scan cost."""
    return max(16, int(4 * math.sqrt(count)))


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored in an IDMap2-over-Flat index."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
    return ids, vectors


def build_ivf(ids: np.ndarray, vectors: np.ndarray) -> faiss.IndexIVFScalarQuantizer:
    """IVF-SQ8 trained on a sample of `vectors`, holding all of them, with nprobe tuned."""
    dim = vectors.shape[1]
    nlist = nlist_for(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    rng = np.random.default_rng(SEED)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), 64 * nlist), replace=False)]
    ivf.train(sample)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct(id) and remove_ids by id
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = tune_nprobe(ivf, ids, vectors)
    return for_queries(ivf)


def tune_nprobe(ivf: faiss.IndexIVF, ids: np.ndarray, vectors: np.ndarray, k: int = 10) -> int:
    """Smallest power-of-two nprobe whose recall@k against exact search reaches RECALL_TARGET, or at which
    recall stops rising (8-bit codes cap it below the target on data with many near-equal neighbours).

    Queries are stored vectors, left out of their own answers: held-out points of the same distribution."""
    rng = np.random.default_rng(SEED + 1)
    rows = rng.choice(len(vectors), min(TUNING_QUERIES, len(vectors)), replace=False)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(vectors[rows], k + 1)
    truth = _without_self(truth, rows, k)
    position = {int(chunk_id): row for row, chunk_id in enumerate(ids)}
    nprobe, previous = 1, 0.0
    while nprobe < ivf.nlist:
        ivf.nprobe = nprobe
        _, found = ivf.search(vectors[rows], k + 1)
        found = np.vectorize(lambda chunk_id: position.get(int(chunk_id), -1))(found)
        current = recall(_without_self(found, rows, k), truth)
        if current >= RECALL_TARGET or current - previous < 0.002:
            return nprobe
        nprobe, previous = nprobe * 2, current
    return ivf.nlist


def _without_self(neighbours: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    return np.array([[n for n in found if n != row][:k] for found, row in zip(neighbours, rows, strict=True)])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k that the approximate top-k also holds (positions, not ids)."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def for_queries(index: faiss.Index) -> faiss.Index:
    """Search settings that are not stored in the file: one query's IVF lists are split across threads
    (parallel_mode 1), which halved single-query latency on 2 cores."""
    if is_ivf(index):
        faiss.downcast_index(index).parallel_mode = 1
    return index


def describe(index: faiss.Index) -> dict:
    """The manifest's record of the index type."""
    if is_ivf(index):
        ivf = faiss.downcast_index(index)
        return {"type": "ivf-sq8", "nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
    return {"type": "flat"}


def fit(index: faiss.Index) -> faiss.Index:
    """The right type for the index's size: a Flat index that outgrew FLAT_LIMIT becomes IVF-SQ8."""
    if not is_ivf(index) and index.ntotal >= FLAT_LIMIT:
        return build_ivf(*all_vectors(index))
    return index
