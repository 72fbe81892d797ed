"""The retrievers of several knowledge bases (index/knowledge.py) in one process, sharing one model: the first
is opened at start, the others at their first question; past `loaded` of them the least recently asked one is
let go (opened again when asked: ~0.05 s at the bundled size, bench/knowledge_bases.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

from wenda.index.knowledge import KnowledgeBase

from .retriever import Retriever


class Retrievers:
    """Knowledge base name → its retriever; None names the first (or a single corpus's)."""

    def __init__(self, first: Retriever, bases: dict[str, KnowledgeBase], loaded: int | None = None) -> None:
        self.first = first
        self.bases = bases
        self.loaded = loaded  # at most this many besides the first; None: no limit
        self._open: OrderedDict[str, Retriever] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self, name: str) -> None:
        """Let a deleted knowledge base's retriever go."""
        with self._lock:
            self._open.pop(name, None)

    def get(self, name: str | None) -> Retriever:
        """The retriever of a known knowledge base, opened with the first one's settings and model on first use;
        WendaError when its index is not built or unusable."""
        if name is None:
            return self.first
        with self._lock:
            if name in self._open:
                self._open.move_to_end(name)
                return self._open[name]
            base = self.bases[name]
            settings = replace(
                self.first.settings, corpus=base.corpus, index_dir=base.index_dir, metadata_rules=base.metadata
            )
            self._open[name] = retriever = Retriever(settings, self.first.embedder)
            while self.loaded is not None and len(self._open) > self.loaded:
                self._open.popitem(last=False)
            return retriever
