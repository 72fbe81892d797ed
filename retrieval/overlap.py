"""How much of a question a piece of text covers, by the IDF weight of the question's words it contains."""

from __future__ import annotations

from index.chunking import sentence_spans
from index.config import MAX_CHUNK_CHARS
from index.tokenization import normalize

from .candidates import Candidates


def coverage(text: str, candidates: Candidates) -> float:
    """IDF share (0–1) of the question's words found in `text`."""
    total = float(candidates.idf.sum())
    if total == 0:
        return 0.0
    text = normalize(text)
    return sum(w for t, w in zip(candidates.tokens, candidates.idf, strict=True) if t in text) / total


def best_sentence_coverage(text: str, candidates: Candidates) -> float:
    """The highest `coverage` of any one sentence: question words close together are better evidence."""
    return max((coverage(text[a:b], candidates) for a, b in sentence_spans(text, MAX_CHUNK_CHARS)), default=0.0)
