"""The learned ranking: a small LightGBM LambdaRank model over `features.NAMES`, shipped in `models/`.

`python -m wenda.retrieval.training` trains it (docs/quality.md has the data, the cross-validation and why)
and exports it as arrays (`forest.py`), which is what answers load: no LightGBM on the query path. The model
is versioned with the feature list it was trained on, so a feature change that is not followed by
retraining stops at load time instead of ranking with misread columns.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import features
from .forest import Forest

MODELS = Path(__file__).with_name("models")
RANKER_FILE = MODELS / "ranker.txt"  # LightGBM's own text form: for inspection and the parity test
RANKER_ARRAYS = MODELS / "ranker.npz"  # the same trees as arrays (forest.py): what answers use
RANKER_META = MODELS / "ranker.json"
MODES = ("hybrid", "dense", "bm25")


class Ranker:
    """Scores candidate feature rows; higher is better."""

    def __init__(self, forest: Forest, meta: dict) -> None:
        if tuple(meta["features"]) != features.NAMES or forest.features != features.NAMES:
            raise RuntimeError(
                f"{RANKER_ARRAYS} was trained on other features; run `python -m wenda.retrieval.training`"
            )
        self.forest = forest
        self.meta = meta

    @classmethod
    def load(cls, path: Path = RANKER_ARRAYS, meta: Path = RANKER_META) -> Ranker:
        return cls(Forest.load(path), json.loads(meta.read_text(encoding="utf-8")))

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return self.forest.predict(matrix).astype(np.float32)


@lru_cache(maxsize=1)
def shipped() -> Ranker:
    """The model that ships with Wenda (loaded once per process)."""
    return Ranker.load()


def mode_scores(mode: str, matrix: np.ndarray, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """Ranking score of each candidate under `mode`: the learned model, or one retriever alone."""
    if mode == "dense":
        return dense
    if mode == "bm25":
        return lexical
    return shipped().score(matrix)


def order(scores: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Candidates best first; credit and byline lines after every content line, whatever their score."""
    furniture = matrix[:, features.NAMES.index("furniture")] if len(matrix) else np.zeros(0)
    return np.lexsort((-scores, furniture))
