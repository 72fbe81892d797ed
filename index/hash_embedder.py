"""A model-free embedder for scale tests and benchmarks (`WENDA_EMBEDDER=hash`): NOT a retrieval model.

Each text becomes the signed, hashed counts of its search words (the same tokeniser as the BM25 side, so
Chinese is cut into words and English stemmed) and of its CJK character bigrams, in the built-in model's 384
dimensions, L2-normalized as every embedder's vectors are. It is deterministic (xxhash, no seed, no state),
needs no weights, and is two orders of magnitude faster than the model, so a build of a million passages
measures everything but the model: reading, chunking, storage, the vector index, BM25, memory. Texts that
share words get a positive cosine; nothing more is meant by it.

The index's manifest records it like any model, so an index built with it is never served with a real model,
nor a real model's index with it (`store.check_model`)."""

from __future__ import annotations

import re

import numpy as np
import xxhash

from .embeddings import Embedder, normalized
from .tokenization import normalize, tokenize

DIM = 384  # the built-in model's dimension, so vector indexes are sized as in real use
CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,}")


class HashEmbedder(Embedder):
    """Signed feature hashing of words and CJK bigrams (module docstring); for tests and benchmarks only."""

    name = f"hash-xxh64-{DIM} (a model-free test embedder, not a retrieval model)"
    dim = DIM
    query_prefix = ""
    passage_prefix = ""
    engine = "hash"

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def use_threads(self, threads: int) -> None:
        """Nothing to size: hashing runs on the calling thread."""

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            features = tokenize(text)
            features += [run[i : i + 2] for run in CJK_RUN.findall(normalize(text)) for i in range(len(run) - 1)]
            if not features:
                continue
            hashes = (xxhash.xxh64_intdigest(feature.encode()) for feature in features)
            codes = np.fromiter(hashes, dtype=np.uint64, count=len(features))
            signs = np.where(codes >> np.uint64(63), -1.0, 1.0).astype(np.float32)
            vectors[row] = np.bincount((codes % np.uint64(DIM)).astype(np.intp), weights=signs, minlength=DIM)
        return normalized(vectors)
