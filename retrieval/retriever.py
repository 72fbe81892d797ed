"""Dense retrieval over the live index generation, reloading when `wenda index` switches it."""
from __future__ import annotations

import threading

from index.config import Settings
from index.embeddings import Embedder, create_embedder
from index.errors import QueryError
from index.store import Snapshot, check_model, live_generation, open_snapshot

from .query import clean_query
from .results import Response, Result


class Retriever:
    """Loads the model and index once; `ask` is safe to call from several threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or create_embedder(
            settings.embedding_model, settings.query_prefix, settings.passage_prefix
        )
        self._lock = threading.Lock()
        self.snapshot = self._open()

    def _open(self) -> Snapshot:
        snapshot = open_snapshot(self.settings.index_dir)
        check_model(snapshot.manifest, self.embedder.identity())
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

    def search(self, question: str, k: int) -> list[Result]:
        """The `k` best passages for an already-cleaned question."""
        self.refresh()
        snapshot = self.snapshot
        vector = self.embedder.embed_queries([question])[0]
        hits = snapshot.search(vector, k)
        records = snapshot.records([chunk_id for chunk_id, _ in hits])
        ranked = [(records[chunk_id], score) for chunk_id, score in hits if chunk_id in records]
        return [Result(rank, score, record) for rank, (record, score) in enumerate(ranked, start=1)]

    def ask(self, question: str, k: int) -> Response:
        """Answer one raw question; bad input yields a Response with `error`, never an exception."""
        try:
            cleaned = clean_query(question)
        except QueryError as exc:
            return Response(query=question, error=str(exc))
        return Response(query=cleaned, results=self.search(cleaned, k))
