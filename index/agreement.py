"""`wenda agree`: may an index embedded by one model be served by another (e.g. built on a GPU box with
sentence-transformers, served here by the built-in engine)? Only if both give the same vectors for the same
text, so this re-embeds a sample of the index's own chunks with the serving model and compares them with the
stored vectors. Agreement is recorded in the manifest; disagreement is reported and mixing stays refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexMismatchError, WendaError
from .store import open_snapshot, write_lock, write_manifest

if TYPE_CHECKING:
    from .embeddings import Embedder

SAMPLE = 256
# Two embeddings of one text at cosine ≥ 0.98 move a score by at most ~0.02, the width of the gap between
# neighbouring results; the 5th percentile must clear it, so that nearly all passages keep their rank.
MIN_P5_COSINE = 0.98


@dataclass(frozen=True)
class Agreement:
    """Cosine between stored and re-embedded vectors of the same chunks."""

    chunks: int
    mean: float
    p5: float
    min: float

    @property
    def agrees(self) -> bool:
        return self.p5 >= MIN_P5_COSINE


def compare(first: np.ndarray, second: np.ndarray) -> Agreement:
    """Row-by-row cosine of two stacks of vectors of the same chunks."""
    cosines = np.sum(first * second, axis=1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    return Agreement(len(first), float(cosines.mean()), float(np.percentile(cosines, 5)), float(cosines.min()))


def measure(index_dir: Path, embedder: Embedder, sample: int = SAMPLE, seed: int = 0) -> Agreement:
    """Re-embed up to `sample` random chunks of the live index with `embedder` and compare."""
    snapshot = open_snapshot(index_dir, fallback=False)
    try:
        built = snapshot.manifest["model"]
        if built["dim"] != embedder.dim:
            return Agreement(0, 0.0, 0.0, 0.0)
        ids = [row[0] for row in snapshot.db.execute("SELECT id FROM chunks ORDER BY id")]
        ids = sorted(np.random.default_rng(seed).permutation(ids)[:sample].tolist())
        records = snapshot.records(ids)
        stored = snapshot.vectors(ids)
        fresh = embedder.embed_passages([records[i].embedded_text for i in ids])
    finally:
        snapshot.close()
    return compare(stored, fresh)


def between(first: Path, second: Path) -> Agreement:
    """Cosine between the vectors of two indexes of the same corpus (e.g. built locally and on a Ray cluster),
    chunk by chunk; WendaError unless both hold the same chunk ids with the same embedded texts."""
    snapshots = [open_snapshot(path, fallback=False) for path in (first, second)]
    try:
        ids = [[row[0] for row in s.db.execute("SELECT id FROM chunks ORDER BY id")] for s in snapshots]
        if ids[0] != ids[1]:
            raise WendaError(f"{first} and {second} hold different chunk ids ({len(ids[0])} and {len(ids[1])} chunks)")
        texts = [{i: r.embedded_text for i, r in s.records(ids[0]).items()} for s in snapshots]
        if texts[0] != texts[1]:
            differ = next(i for i in ids[0] if texts[0][i] != texts[1][i])
            raise WendaError(f"{first} and {second} differ in the text of chunk {differ}")
        first_vectors, second_vectors = (s.vectors(ids[0]) for s in snapshots)
    finally:
        for snapshot in snapshots:
            snapshot.close()
    return compare(first_vectors, second_vectors)


def record(index_dir: Path, embedder: Embedder, agreement: Agreement) -> None:
    """Allow serving the live generation with `embedder` (only if it agrees); later builds keep this."""
    if not agreement.agrees:
        raise WendaError("refusing to record a model that does not agree")
    with write_lock(index_dir):
        snapshot = open_snapshot(index_dir, mmap=False, fallback=False)
        try:
            manifest = dict(snapshot.manifest)
            entries = [e for e in manifest.get("servable_with", []) if e["model"] != embedder.identity()]
            manifest["servable_with"] = [*entries, {"model": embedder.identity(), **asdict(agreement)}]
            write_manifest(snapshot.path, manifest)
        finally:
            snapshot.close()


def check_engines(manifest: dict) -> None:
    """Refuse an index whose vectors came from an engine not shown to agree with the engine of the questions:
    each recorded engine carries its certified agreement (None: the questions' own engine)."""
    for engine, agreement in manifest.get("engines", {}).items():
        if agreement is not None and agreement.get("p5", 0.0) < MIN_P5_COSINE:
            raise IndexMismatchError(
                f"the index's passages were embedded by {engine}, whose vectors disagree with the engine that "
                f"embeds questions (5th-percentile cosine {agreement.get('p5', 0.0):.4f} < {MIN_P5_COSINE}); "
                "rebuild it with `wenda index --rebuild`"
            )
