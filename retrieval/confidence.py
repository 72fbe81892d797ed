"""Confidence: the calibrated probability that the top result answers the question.

A logistic model over question-level evidence (the ranker's score and margin, the best cosine read
against the index's own off-topic probes, how much of the question the top passage covers), fitted by
`python -m wenda.retrieval.training` on questions over three corpora plus questions each corpus cannot answer,
and checked on a corpus it was not fitted on (reliability table in docs/quality.md). `answerable` is
`confidence >= WENDA_MIN_CONFIDENCE` (default in `index.config`).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import features
from .calibration import Calibration

MODEL_FILE = Path(__file__).with_name("models") / "confidence.json"
NAMES = (
    "top_score",
    "margin",
    "top_dense",
    "dense_vs_probes",
    "best_dense_vs_probes",
    "coverage",
    "sentence_coverage",
    "bigram_share",
    "bm25_ratio",
    "furniture",
    "trust",
    "cross_lingual",
    "bm25_idf_share",
    "content_words",
    "dense_between",
)
COLUMN = features.COLUMN


def probe_z(cosine: float, profile: dict, language: str) -> float:
    """How far a cosine lies above the index's off-topic probes, in their standard deviations."""
    stats = profile.get(language)
    if not stats:
        return 0.0
    return (cosine - stats["mean"]) / stats["std"]


def question_features(
    matrix: np.ndarray,
    scores: np.ndarray,
    ranking: np.ndarray,
    profile: dict,
    language: str,
    content_words: int,
    levels: Calibration,
) -> np.ndarray:
    """The evidence vector (`NAMES`) of one question, from its candidates ranked best first; `levels` is the
    index's own measure of right and best-wrong evidence (calibration.py)."""
    top = matrix[ranking[0]]
    second = float(scores[ranking[1]]) if len(ranking) > 1 else float(scores[ranking[0]]) - 1.0
    best_dense = float(matrix[:, COLUMN["dense"]].max())
    return np.array(
        [
            scores[ranking[0]],
            scores[ranking[0]] - second,
            top[COLUMN["dense"]],
            probe_z(float(top[COLUMN["dense"]]), profile, language),
            probe_z(best_dense, profile, language),
            top[COLUMN["coverage"]],
            top[COLUMN["sentence_coverage"]],
            top[COLUMN["bigram_share"]],
            top[COLUMN["bm25_ratio"]],
            top[COLUMN["furniture"]],
            top[COLUMN["trust"]],
            top[COLUMN["cross_lingual"]],
            top[COLUMN["bm25_idf_share"]],
            math.log1p(content_words),
            levels.between(float(top[COLUMN["dense"]]), language),
        ],
        dtype=np.float64,
    )


class ConfidenceModel:
    """Standardized logistic regression stored as plain numbers (no pickle, no library at query time)."""

    def __init__(self, data: dict) -> None:
        if tuple(data["features"]) != NAMES:
            raise RuntimeError(f"{MODEL_FILE} was fitted on other features; run `python -m wenda.retrieval.training`")
        self.mean = np.array(data["mean"])
        self.scale = np.array(data["scale"])
        self.coef = np.array(data["coef"])
        self.intercept = float(data["intercept"])
        self.data = data

    def probability(self, evidence: np.ndarray) -> float:
        logit = float(((evidence - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))


@lru_cache(maxsize=1)
def shipped() -> ConfidenceModel:
    return ConfidenceModel(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
