"""Second stage: combine dense and BM25 scores of the candidates into one ranking score."""

from __future__ import annotations

import numpy as np

from index.store import ChunkRecord

from .candidates import Candidates
from .overlap import best_sentence_coverage

MODES = ("hybrid", "dense", "bm25")
# Weight of the BM25 z-score against the dense z-score when every query word is known to the corpus.
LEXICAL_WEIGHT = 0.5
# Second stage, hybrid mode only: how many fused candidates get the proximity bonus, and its weight in z units.
RERANK_DEPTH = 10
PROXIMITY_WEIGHT = 2.0


def zscore(values: np.ndarray) -> np.ndarray:
    spread = float(values.std()) if len(values) else 0.0
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)


def lexical_trust(candidates: Candidates) -> float:
    """Share of the query's IDF mass made of words the corpus uses: 0 for an English question on Chinese text."""
    total = float(candidates.idf.sum())
    return float(candidates.idf[candidates.known].sum()) / total if total > 0 else 0.0


def fuse(candidates: Candidates, mode: str = "hybrid") -> np.ndarray:
    """Ranking score of each candidate under `mode` (higher is better)."""
    if mode == "dense":
        return candidates.dense
    if mode == "bm25":
        return candidates.lexical
    weight = LEXICAL_WEIGHT * lexical_trust(candidates)
    return zscore(candidates.dense) + weight * zscore(candidates.lexical)


def proximity_bonus(records: list[ChunkRecord | None], candidates: Candidates) -> np.ndarray:
    """Bonus for the top candidates that hold most question words within one sentence (term proximity);
    it breaks near-ties between passages of the same topic in favour of the one that states the fact."""
    return np.array(
        [PROXIMITY_WEIGHT * best_sentence_coverage(r.text, candidates) if r else 0.0 for r in records], np.float32
    )
