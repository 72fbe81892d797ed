"""`wenda eval`: recall@k, MRR, abstention and answer quality of the pipeline on a question file."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .results import Response, Result
from .retriever import Retriever

CUTOFFS = (1, 5, 20)


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class Outcome:
    """How the pipeline did on one question; `rank` is None when no result in the top 20 is right."""

    type: str
    answerable: bool
    predicted_answerable: bool
    rank: int | None
    answer_hit: bool | None
    seconds: float
    confidence: float = 0.0


def judge(question: dict) -> tuple[str, Callable[[Result], bool], list[str]]:
    """(type, is-this-result-right, answer strings) for a question in either supported format."""
    if "gold_pids" in question:
        gold = set(question["gold_pids"])
        return question.get("type", "all"), lambda result: result.record.source in gold, question.get("answers", [])
    evidence = [nfkc(e) for e in question.get("ev", [])]
    return question.get("type", "all"), lambda result: any(e in nfkc(result.record.text) for e in evidence), evidence


def question_text(question: dict) -> str:
    return question.get("q") or question.get("question") or ""


def evaluate(retriever: Retriever, questions: list[dict]) -> list[Outcome]:
    """Ask every question for its top 20 and record where the first right passage is."""
    outcomes = []
    for question in questions:
        kind, right, answers = judge(question)
        started = time.perf_counter()
        response: Response = retriever.ask(question_text(question), max(CUTOFFS))
        seconds = time.perf_counter() - started
        rank = next((r.rank for r in response.results if right(r)), None)
        answer_hit = None
        if answers and response.answer is not None:
            answer_hit = any(a in nfkc(response.answer.text) for a in map(nfkc, answers))
        elif answers:
            answer_hit = False
        answerable = bool(answers) or "gold_pids" in question
        outcomes.append(Outcome(kind, answerable, response.answerable, rank, answer_hit, seconds, response.confidence))
    return outcomes


def calibration_error(outcomes: list[Outcome], bins: int = 10) -> float | None:
    """Expected calibration error of `confidence` against "the top result answers" (10 equal-width bins)."""
    if not outcomes:
        return None
    predicted = np.array([o.confidence for o in outcomes])
    observed = np.array([o.answerable and o.rank == 1 for o in outcomes], dtype=float)
    which = np.minimum((predicted * bins).astype(int), bins - 1)
    return float(
        sum(abs(predicted[which == b].mean() - observed[which == b].mean()) * np.mean(which == b) for b in set(which))
    )


def summarize(outcomes: list[Outcome], abstention: bool = True) -> dict:
    """Figures overall and per question type; `abstention=False` (a single-retriever mode, whose scores the
    confidence model was not fitted on) leaves out abstention and calibration."""
    groups = {"all": outcomes}
    for kind in sorted({o.type for o in outcomes}):
        groups[kind] = [o for o in outcomes if o.type == kind]
    summary: dict = {}
    for name, group in groups.items():
        answerable = [o for o in group if o.answerable]
        unanswerable = [o for o in group if not o.answerable]
        row: dict = {"questions": len(group)}
        if answerable:
            ranks = np.array([o.rank or 10**9 for o in answerable])
            row.update({f"recall@{k}": float(np.mean(ranks <= k)) for k in CUTOFFS})
            row["mrr"] = float(np.mean(1.0 / ranks))
            if abstention:
                row["false_abstention"] = float(np.mean([not o.predicted_answerable for o in answerable]))
            hits = [o.answer_hit for o in answerable if o.answer_hit is not None]
            if abstention:  # the answer sentence is picked only for questions judged answerable
                row["answer_hit"] = float(np.mean(hits)) if hits else None
        if unanswerable and abstention:
            row["missed_abstention"] = float(np.mean([o.predicted_answerable for o in unanswerable]))
        if abstention:
            row["ece"] = calibration_error(group)
        summary[name] = row
    latencies = np.array([o.seconds for o in outcomes]) * 1000
    summary["latency_ms"] = {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95))}
    return summary


COLUMNS = (
    "questions",
    "recall@1",
    "recall@5",
    "recall@20",
    "mrr",
    "answer_hit",
    "false_abstention",
    "missed_abstention",
    "ece",
)


HEADERS = {"answer_hit": "answered", "false_abstention": "false_abs", "missed_abstention": "missed_ab"}


def format_table(summaries: dict[str, dict]) -> str:
    """A plain-text table: one row per (mode, question type)."""
    lines = ["mode     type          " + "  ".join(f"{HEADERS.get(c, c):>9.9}" for c in COLUMNS)]
    for mode, summary in summaries.items():
        for kind, row in summary.items():
            if kind == "latency_ms":
                continue
            cells = []
            for column in COLUMNS:
                value = row.get(column)
                cells.append(
                    f"{'-':>9}" if value is None else f"{value:>9}" if column == "questions" else f"{value:>9.3f}"
                )
            lines.append(f"{mode:8} {kind:13} " + "  ".join(cells))
        latency = summary["latency_ms"]
        lines.append(f"{mode:8} latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    return "\n".join(lines)
