"""First stage: the union of the best dense and the best BM25 chunks, each scored both ways."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from wenda.index.store import Snapshot

# Enough candidates that the right chunk is almost always among them (recall@100 of either retriever),
# few enough that scoring them both ways costs well under a millisecond.
POOL_SIZE = 100


@dataclass(frozen=True)
class Candidates:
    """Chunk ids with their dense cosine and BM25 scores, plus the query's tokens and their IDF."""

    ids: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    tokens: list[str]
    idf: np.ndarray
    known: np.ndarray  # whether each query token occurs in the corpus at all


def gather(
    snapshot: Snapshot,
    vector: np.ndarray,
    tokens: list[str],
    pool: int = POOL_SIZE,
    lap: Callable[[str], None] = lambda stage: None,
    allowed: np.ndarray | None = None,
) -> Candidates:
    """Dense top `pool` plus BM25 top `pool`, each with both scores, among the chunk ids `allowed` when given
    (a metadata filter, retrieval/filters.py); `lap` is told when each search ends."""
    dense_hits = snapshot.search(vector, pool, allowed)
    lap("faiss")
    lexical_scores = snapshot.lexical.scores(tokens)
    if allowed is not None:
        lexical_scores = np.where(np.isin(snapshot.lexical.ids, allowed), lexical_scores, 0.0)
    lexical_hits = snapshot.lexical.top(lexical_scores, pool)  # scored once, used twice
    lap("bm25")
    dense_by_id = dict(dense_hits)
    ids = np.array(sorted(dense_by_id.keys() | {chunk_id for chunk_id, _ in lexical_hits}), dtype=np.int64)
    lexical_only = [int(i) for i in ids if int(i) not in dense_by_id]
    dense_by_id.update(zip(lexical_only, (snapshot.vectors(lexical_only) @ vector).tolist(), strict=True))
    dense = np.array([dense_by_id[int(i)] for i in ids], dtype=np.float32)
    positions = snapshot.lexical.position(ids)
    lexical = np.asarray(lexical_scores, dtype=np.float32)[positions] if len(ids) else np.zeros(0, np.float32)
    known = np.array([token in snapshot.lexical.vocabulary for token in tokens], dtype=bool)
    return Candidates(ids, dense, lexical, tokens, snapshot.lexical.idf(tokens), known)
