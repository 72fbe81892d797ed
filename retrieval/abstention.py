"""Abstention: say "not in the corpus" when the best evidence is too weak.

Evidence is the best dense cosine plus a little for the share of the question's words (by IDF) that
the top passage contains. Thresholds were calibrated on dev.jsonl plus bench/questions/ood.jsonl
(docs/quality.md has the figures). A question without Chinese characters cannot be matched word for
word against Chinese text, so it is judged by its cosine alone, against a lower bar: e5's cross-lingual
cosines run about 0.1 below same-language ones.
"""

from __future__ import annotations

import re

from .candidates import Candidates
from .overlap import coverage
from .results import Result

COVERAGE_WEIGHT = 0.05
CHINESE_THRESHOLD = 0.917
CROSS_LINGUAL_THRESHOLD = 0.77
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def evidence(question: str, candidates: Candidates, results: list[Result]) -> tuple[float, float]:
    """(evidence score, threshold it must reach) for a question and its ranked results."""
    best = float(candidates.dense.max(initial=0.0))
    if not CJK.search(question):
        return best, CROSS_LINGUAL_THRESHOLD
    record = results[0].record
    context = " ".join(part for part in (record.place, record.title, record.section, record.text) if part)
    return best + COVERAGE_WEIGHT * coverage(context, candidates), CHINESE_THRESHOLD


def is_answerable(question: str, candidates: Candidates, results: list[Result]) -> bool:
    if not results:
        return False
    score, threshold = evidence(question, candidates, results)
    return bool(score >= threshold)
