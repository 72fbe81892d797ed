"""Hybrid retrieval over the live index generation, reloading when `wenda index` switches it."""

from __future__ import annotations

import threading

import jieba
import numpy as np

from index.config import Settings
from index.embeddings import Embedder, embedder_for
from index.errors import QueryError
from index.store import Snapshot, check_model, live_generation, open_snapshot
from index.tokenization import normalize, tokenize

from .abstention import is_answerable
from .answer import extract_answer
from .candidates import gather
from .fusion import MODES, RERANK_DEPTH, fuse, proximity_bonus
from .query import clean_query
from .results import Response, Result


class Retriever:
    """Loads the model and index once; `ask` is safe to call from several threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, mode: str = "hybrid") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.settings = settings
        self.mode = mode
        self.embedder = embedder or embedder_for(settings)
        self._lock = threading.Lock()
        self.snapshot = self._open()
        jieba.initialize()  # load the dictionary now, not on the first question

    def _open(self) -> Snapshot:
        snapshot = open_snapshot(self.settings.index_dir)
        check_model(snapshot.manifest, self.embedder.identity(), serving=True)
        return snapshot

    def refresh(self) -> bool:
        """Switch to a newer generation if `wenda index` committed one; True when it did."""
        if live_generation(self.settings.index_dir) == self.snapshot.path:
            return False
        with self._lock:
            if live_generation(self.settings.index_dir) != self.snapshot.path:
                self.snapshot = self._open()  # the old one is left to the garbage collector: readers may hold it
                return True
        return False

    def ask(self, question: str, k: int) -> Response:
        """Answer one raw question; bad input yields a Response with `error`, never an exception."""
        try:
            cleaned = clean_query(question)
        except QueryError as exc:
            return Response(query=question, error=str(exc))
        self.refresh()
        snapshot = self.snapshot
        vector = self.embedder.embed_queries([normalize(cleaned)])[0]  # lower case: measured better for English
        candidates = gather(snapshot, vector, tokenize(cleaned))
        scores = fuse(candidates, self.mode)
        order = np.argsort(-scores, kind="stable")[: max(3 * k, RERANK_DEPTH)]
        records = snapshot.records(candidates.ids[order].tolist())
        if self.mode == "hybrid":
            top = order[:RERANK_DEPTH]
            scores[top] += proximity_bonus([records.get(int(i)) for i in candidates.ids[top]], candidates)
            order = order[np.argsort(-scores[order], kind="stable")]
        results: list[Result] = []
        seen: set[tuple[str, int]] = set()  # overlapping windows of one paragraph: keep the best only
        for i in order:
            record = records.get(int(candidates.ids[i]))
            if record is None or (record.source, record.paragraph) in seen:
                continue
            seen.add((record.source, record.paragraph))
            dense, bm25 = float(candidates.dense[i]), float(candidates.lexical[i])
            results.append(Result(len(results) + 1, float(scores[i]), record, dense, bm25))
            if len(results) == k:
                break
        answerable = is_answerable(cleaned, candidates, results)
        answer = extract_answer(cleaned, candidates, [r.record for r in results], self.embedder) if answerable else None
        return Response(cleaned, results, answer, answerable)
