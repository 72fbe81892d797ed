"""`wenda eval`: recall@k, MRR, abstention and answer quality of the pipeline on a question file."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from wenda.index.errors import WendaError
from wenda.index.passages import read_jsonl

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


def load_questions(path: Path, limit: int | None, with_passages: bool) -> list[dict]:
    """The first `limit` questions of a .jsonl file, checked so a bad file is one clear error, not a crash or a 0."""
    if limit is not None and limit < 1:
        raise WendaError(f"--limit must be at least 1, not {limit}")
    questions = list(islice(read_jsonl(path), limit))
    if not questions:
        raise WendaError(f"{path} holds no questions")
    for number, question in enumerate(questions, start=1):  # read_jsonl skips blank lines: they are not counted
        text = question_text(question) if isinstance(question, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise WendaError(f'{path}:{number}: no "q" or "question" field')
        if "gold_pids" in question and not with_passages:
            raise WendaError(
                f"{path}:{number}: questions with gold_pids are scored against their passages, "
                "which need --passages PASSAGES_FILE"
            )
    return questions


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


def reliability_table(predicted: np.ndarray, observed: np.ndarray, bins: int = 10) -> list[dict]:
    """For each non-empty one of `bins` equal-width confidence bins: its range, the mean confidence, the
    share observed right and the count."""
    which = np.minimum((predicted * bins).astype(int), bins - 1)
    return [
        {
            "low": b / bins,
            "high": (b + 1) / bins,
            "mean_confidence": float(predicted[which == b].mean()),
            "accuracy": float(observed[which == b].mean()),
            "count": int(np.sum(which == b)),
        }
        for b in sorted(set(which.tolist()))
    ]


def expected_calibration_error(table: list[dict]) -> float:
    """The count-weighted gap between confidence and accuracy over a reliability table's bins."""
    total = sum(row["count"] for row in table)
    if not total:
        return 0.0
    return float(sum(abs(row["mean_confidence"] - row["accuracy"]) * row["count"] for row in table) / total)


def reliability(outcomes: list[Outcome], bins: int = 10) -> list[dict]:
    """The reliability table of `confidence` against "the top result answers"."""
    predicted = np.array([o.confidence for o in outcomes], dtype=float)
    observed = np.array([o.answerable and o.rank == 1 for o in outcomes], dtype=float)
    return reliability_table(predicted, observed, bins)


def calibration_error(outcomes: list[Outcome], bins: int = 10) -> float | None:
    """Expected calibration error of `confidence` against "the top result answers"."""
    return expected_calibration_error(reliability(outcomes, bins)) if outcomes else None


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
            if name == "all":
                row["refused_of"] = [sum(not o.predicted_answerable for o in answerable), len(answerable)]
                row["flagged_of"] = [sum(not o.predicted_answerable for o in unanswerable), len(unanswerable)]
                row["reliability"] = reliability(group)
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


def cell(column: str, value: float | None) -> str:
    """One figure as text: a count as is, a rate with three decimals, a missing one as "-"."""
    return "-" if value is None else str(value) if column == "questions" else f"{value:.3f}"


def format_table(summaries: dict[str, dict]) -> str:
    """A plain-text table, one row per (mode, question type); columns as wide as header and values: no name is cut."""
    header = ["mode", "type", *COLUMNS]
    rows = [
        [mode, kind, *(cell(c, row.get(c)) for c in COLUMNS)]
        for mode, summary in summaries.items()
        for kind, row in summary.items()
        if kind != "latency_ms"
    ]
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(header)]
    for mode, summary in summaries.items():
        lines.extend(line(cells) for cells in rows if cells[0] == mode)
        latency = summary["latency_ms"]
        lines.append(f"{mode:{widths[0]}}  latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    for mode, summary in summaries.items():
        if "reliability" in summary["all"]:
            lines += ["", *confidence_report(mode, summary["all"])]
    return "\n".join(lines)


def confidence_report(mode: str, row: dict) -> list[str]:
    """Refusals, flags and the reliability table of one mode's questions, as text lines."""
    refused, answerable = row["refused_of"]
    flagged, unanswerable = row["flagged_of"]
    lines = [
        f"{mode}: answerable questions refused {refused} of {answerable}"
        + (f" ({refused / answerable:.1%})" if answerable else "")
        + f"; unanswerable questions flagged {flagged} of {unanswerable}"
        + (f" ({flagged / unanswerable:.1%})" if unanswerable else "")
        + f"; ECE {row['ece']:.3f}",
        "confidence  mean confidence  top result right  questions",
    ]
    for b in row["reliability"]:
        lines.append(
            f"{b['low']:.1f}-{b['high']:.1f}     {b['mean_confidence']:15.3f}  {b['accuracy']:16.3f}  {b['count']:9d}"
        )
    return lines
