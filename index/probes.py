"""Off-topic probes: what "no answer" looks like in one index, measured when the index is built.

Cosines mean different things in different corpora and models (e5's scores crowd between 0.75 and 0.95;
a corpus of news about everything lies closer to any question than five reform reports do). So every
new generation asks the bundled off-topic questions (`probes.txt`) and records the distribution of their
best cosines, per language; the confidence model reads a question's best cosine against that
distribution instead of against an absolute threshold that would need hand calibration per corpus.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np

from .config import keep_prepared, prepared_dir
from .embeddings import Embedder
from .tokenization import normalize
from .vectors import search_mapped

PROBES_FILE = Path(__file__).with_name("probes.txt")
CJK = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=1)
def probe_questions() -> tuple[str, ...]:
    lines = PROBES_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def language(question: str) -> str:
    """'zh' for a question with Chinese characters, else 'en' (cross-lingual cosines run lower)."""
    return "zh" if CJK.search(question) else "en"


_embedded: dict[str, np.ndarray] = {}  # probe vectors by model identity: a process that builds again (--watch)
# or builds several indexes pays the ~0.7 s of embedding them once


def probe_vectors(embedder: Embedder) -> np.ndarray:
    """The probe questions embedded by `embedder`: computed once per model and process, and for the built-in
    model once per machine (kept with the other data derived from installed packages, `prepared_dir`), since
    every new generation of every index asks them."""
    key = json.dumps(embedder.identity(), sort_keys=True)
    if key not in _embedded:
        kept = _kept_file(key) if embedder.packaged else None
        vectors = _read_kept(kept, embedder.dim) if kept else None
        if vectors is None:
            vectors = embedder.embed_queries([normalize(q) for q in probe_questions()])
            if kept:
                stored = io.BytesIO()
                np.savez(stored, vectors=vectors, checksum=_checksum(vectors))
                keep_prepared(kept, stored.getvalue())
        _embedded[key] = vectors
    return _embedded[key]


def _kept_file(key: str) -> Path:
    digest = hashlib.sha256(f"{key}\n{PROBES_FILE.read_text(encoding='utf-8')}".encode()).hexdigest()[:20]
    return prepared_dir() / f"probes-{digest}.npz"


def _checksum(vectors: np.ndarray) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(vectors.tobytes()).digest(), dtype=np.uint8)


def _read_kept(path: Path, dim: int) -> np.ndarray | None:
    """The kept vectors, or None when missing, damaged or not of this shape (then they are embedded again)."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            vectors, checksum = kept["vectors"], kept["checksum"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    fits = vectors.dtype == np.float32 and vectors.shape == (len(probe_questions()), dim)
    return vectors if fits and np.array_equal(checksum, _checksum(vectors)) else None


def probe_profile(embedder: Embedder, vectors: faiss.Index, mapped: Path | None = None) -> dict:
    """{"zh": {"mean", "std", "n"}, "en": {…}}: best cosines of the probe questions against `vectors` (memory-mapped
    from the file `mapped`, whose pages are let go as it is searched: `search_mapped`)."""
    questions = probe_questions()
    if vectors.ntotal == 0:
        return {}
    best = search_mapped(vectors, probe_vectors(embedder), 1, mapped)[0][:, 0]
    profile = {}
    for lang in ("zh", "en"):
        values = np.array([b for q, b in zip(questions, best, strict=True) if language(q) == lang], dtype=np.float64)
        profile[lang] = {"mean": float(values.mean()), "std": float(max(values.std(), 1e-3)), "n": int(len(values))}
    return profile
