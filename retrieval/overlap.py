"""How much of a question a piece of text covers, by the IDF weight of the question's words it contains."""

from __future__ import annotations

import numpy as np
from wenda.index.chunking import sentence_spans
from wenda.index.config import MAX_CHUNK_CHARS
from wenda.index.tokenization import normalize

from .candidates import Candidates


def share(normalized: str, tokens: list[str], weights: np.ndarray) -> float:
    """Sum of the weights of the tokens found in already-normalized text."""
    return float(sum(w for t, w in zip(tokens, weights, strict=True) if t in normalized))


def best_sentence_share(normalized: str, tokens: list[str], weights: np.ndarray) -> float:
    """The highest `share` of any one sentence: question words close together are better evidence."""
    spans = sentence_spans(normalized, MAX_CHUNK_CHARS)
    return max((share(normalized[a:b], tokens, weights) for a, b in spans), default=0.0)


def coverage(text: str, candidates: Candidates) -> float:
    """IDF share (0–1) of the question's words found in `text`."""
    total = float(candidates.idf.sum())
    return share(normalize(text), candidates.tokens, candidates.idf / total) if total > 0 else 0.0
