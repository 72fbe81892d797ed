"""BM25 over jieba tokens, keyed by chunk id and saved inside each index generation.

bm25s computes the score matrix when an index is built; answering reads its saved arrays with numpy and sums
them the way bm25s does, so that a question imports neither bm25s nor the scipy it brings (0.15 s of every
CLI question's start).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

logging.getLogger("bm25s").setLevel(logging.ERROR)

IDS_FILE = "ids.npy"
# bm25s's file names (BM25.save / BM25.load), so either can read what the other wrote.
PARAMS_FILE, VOCAB_FILE = "params.index.json", "vocab.index.json"
ARRAY_FILES = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}


class LexicalIndex:
    """BM25 scores for token lists; `ids[i]` is the chunk id of BM25 document i, `vocabulary` numbers the
    tokens, and column t of the score matrix (CSC: `data`, `indices`, `indptr`) holds token t's score in
    every document that has it."""

    def __init__(self, vocabulary: dict[str, int], arrays: dict[str, np.ndarray], ids: np.ndarray, model: Any = None):
        self.vocabulary = vocabulary
        self.data, self.indices, self.indptr = arrays["data"], arrays["indices"], arrays["indptr"]
        self.ids = ids
        self._model = model  # the bm25s.BM25 that built it (saving writes its files), None once loaded

    @classmethod
    def build(cls, ids: list[int], token_lists: Iterable[list[str]]) -> LexicalIndex:
        """BM25 of the documents `token_lists` gives, in `ids` order. It is read twice (the vocabulary, then each
        document's token numbers), so it may stream from storage: only the numbers of all documents are held,
        not their words (at 1M chunks the words as Python strings were gigabytes)."""
        import bm25s  # building only

        model = bm25s.BM25()  # Lucene BM25, k1 1.5, b 0.75
        # An empty token list still needs a document slot (the word "") so positions keep matching `ids`.
        # The vocabulary in sorted order (bm25s numbers it in set order, which changes with each process's string
        # hashing), so the same chunks always give the same files: a build is reproducible, locally or on Ray.
        words = sorted({word for tokens in token_lists for word in (tokens or [""])})
        vocabulary = {word: number for number, word in enumerate(words)}
        numbers = [[vocabulary[word] for word in (tokens or [""])] for tokens in token_lists]
        model.index((numbers, vocabulary), show_progress=False)
        arrays = {name: model.scores[name] for name in ARRAY_FILES}
        return cls(model.vocab_dict, arrays, np.asarray(ids, dtype=np.int64), model)

    def save(self, path: Path) -> None:
        if self._model is None:
            raise RuntimeError("a loaded BM25 index is saved by copying its folder, not through LexicalIndex.save")
        path.mkdir(parents=True, exist_ok=True)
        self._model.save(str(path), show_progress=False)
        np.save(path / IDS_FILE, self.ids)

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> LexicalIndex:
        params = json.loads((path / PARAMS_FILE).read_text(encoding="utf-8"))
        if params.get("method") != "lucene":
            raise ValueError(f"{path / PARAMS_FILE}: BM25 variant {params.get('method')!r}, Wenda writes 'lucene'")
        vocabulary = json.loads((path / VOCAB_FILE).read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        arrays = {name: np.load(path / file, mmap_mode=mode) for name, file in ARRAY_FILES.items()}
        columns = len(arrays["indptr"]) - 1
        vocabulary = {token: column for token, column in vocabulary.items() if column < columns}  # bm25s adds ""
        if len(vocabulary) != columns:
            raise ValueError(f"{path}: {columns} score columns for {len(vocabulary)} tokens")
        return cls(vocabulary, arrays, np.load(path / IDS_FILE, mmap_mode=mode))

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document (aligned with `ids`); zeros for a query with no known token."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        # bm25s's sum (BM25._compute_relevance_from_scores): a repeated token counts again, in query order
        for token in tokens:
            column = self.vocabulary.get(token)
            if column is not None:
                start, end = self.indptr[column], self.indptr[column + 1]
                np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores

    def idf(self, tokens: list[str]) -> np.ndarray:
        """Lucene IDF of each token; a token the corpus never uses gets the highest IDF (df = 0)."""
        indptr, vocab = self.indptr, self.vocabulary
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
