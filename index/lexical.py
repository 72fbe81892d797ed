"""BM25 over jieba tokens (bm25s), keyed by chunk id and saved inside each index generation."""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.ERROR)

IDS_FILE = "ids.npy"


class LexicalIndex:
    """BM25 scores for token lists; `ids[i]` is the chunk id of bm25s document i."""

    def __init__(self, model: bm25s.BM25, ids: np.ndarray) -> None:
        self.model = model
        self.ids = ids

    @classmethod
    def build(cls, ids: list[int], token_lists: list[list[str]]) -> LexicalIndex:
        model = bm25s.BM25()
        # An empty token list still needs a document slot so positions keep matching `ids`.
        documents = [tokens or [""] for tokens in token_lists]
        # The vocabulary in sorted order (bm25s numbers it in set order, which changes with each process's string
        # hashing), so the same chunks always give the same files: a build is reproducible, locally or on Ray.
        vocabulary = {token: number for number, token in enumerate(sorted({t for tokens in documents for t in tokens}))}
        model.index(([[vocabulary[t] for t in tokens] for tokens in documents], vocabulary), show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.model.save(str(path), show_progress=False)
        np.save(path / IDS_FILE, self.ids)

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> LexicalIndex:
        model = bm25s.BM25.load(str(path), mmap=mmap, show_progress=False)
        return cls(model, np.load(path / IDS_FILE, mmap_mode="r" if mmap else None))

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document (aligned with `ids`); zeros for a query with no known token."""
        known = self.model.get_tokens_ids(tokens)
        if not known or len(self.ids) == 0:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.model.get_scores_from_ids(known)

    def idf(self, tokens: list[str]) -> np.ndarray:
        """Lucene IDF of each token; a token the corpus never uses gets the highest IDF (df = 0)."""
        indptr = self.model.scores["indptr"]
        vocab = self.model.vocab_dict
        df = np.array([indptr[vocab[t] + 1] - indptr[vocab[t]] if t in vocab else 0 for t in tokens], dtype=np.float64)
        return np.log1p((len(self.ids) - df + 0.5) / (df + 0.5))

    def position(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Row of each chunk id in `scores` (ids are stored sorted)."""
        return np.searchsorted(self.ids, chunk_ids)

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the `k` best documents with a positive score, best first."""
        return self.top(self.scores(tokens), k)

    def top(self, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the `k` best positive entries of a `scores` array."""
        k = min(k, len(scores))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]
