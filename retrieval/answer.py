"""Extractive answer: the sentence of the top passages that best answers the question, and within it the
span the question asks for (a number with its unit, a date, a place or a name), both verbatim."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wenda.index.chunking import sentence_spans
from wenda.index.config import MAX_CHUNK_CHARS
from wenda.index.furniture import is_furniture
from wenda.index.store import ChunkRecord
from wenda.index.tokenization import normalize

from .candidates import Candidates
from .features import LOOKS, Question
from .overlap import coverage

# Passages whose sentences compete for the answer: the top ones only, since rank already carries evidence.
ANSWER_PASSAGES = 3
# A sentence this short rarely stands alone ("截至目前，……。"), so the next one is added.
MIN_ANSWER_CHARS = 20
# A sentence holding what the question asks for (a number for 多少) beats one that only shares more words.
TYPE_BONUS = 0.25
RANK_PENALTY = 0.05
FOCUS_WEIGHT = 3.0
YEAR = re.compile(r"\d{4}\s*年")


@dataclass(frozen=True)
class Answer:
    """`text == record.paragraph_text[start:end]`: offsets are in the cited paragraph; `span` (same
    coordinates) is the part that fits the question type, when the question has one and it was found."""

    record: ChunkRecord
    start: int
    end: int
    span: tuple[int, int] | None = None

    @property
    def text(self) -> str:
        return self.record.paragraph_text[self.start : self.end]


def _sentences(record: ChunkRecord) -> list[tuple[int, int]]:
    """Sentence spans of a chunk, as paragraph offsets."""
    return [(record.start + a, record.start + b) for a, b in sentence_spans(record.text, MAX_CHUNK_CHARS)]


def _typed_span(question: Question, candidates: Candidates, text: str, offset: int) -> tuple[int, int] | None:
    """The stretch of `text` that looks like what the question asks for, as paragraph offsets. Of several
    ("出租车1359台，其中纯电动车辆856台" asked "多少台纯电动车"), the one closest to the question's words:
    each pulls by its IDF, three times as hard when it names the thing asked for (it follows 多少/几/哪),
    less with every character of distance."""
    normalized = normalize(text)  # NFKC keeps CJK and ASCII one character each, so offsets line up
    anchors = [
        (m.start(), weight * (FOCUS_WEIGHT if word in question.focus else 1.0))
        for word, weight in zip(candidates.tokens, candidates.idf, strict=True)
        for m in re.finditer(re.escape(word), normalized)
    ]
    for kind in question.asks:
        # what the question already says ("2022年" in "2022年开工率是多少") is not its answer, nor is a year
        # the answer to 多少 ("2021年…完工，2022年…开工率达93.4%")
        matches = [
            m
            for m in LOOKS[kind].finditer(text)
            if normalize(m.group()) not in question.text
            and not (kind in ("number", "duration") and YEAR.fullmatch(m.group()))
        ]
        if matches:
            best = max(matches, key=lambda m: sum(w / (1 + abs(m.start() - a)) for a, w in anchors))
            return offset + best.start(), offset + best.end()
    return None


def extract_answer(question: Question, candidates: Candidates, records: list[ChunkRecord]) -> Answer | None:
    """Best sentence by the IDF share of question words it holds, plus a bonus when it holds the asked-for
    type; credits and bylines never answer."""
    pool = [record for record in records[:ANSWER_PASSAGES] if not is_furniture(record.text)]
    best: tuple[float, ChunkRecord, list[tuple[int, int]], int] | None = None
    for rank, record in enumerate(pool):
        spans = _sentences(record)
        for i, (start, end) in enumerate(spans):
            text = record.paragraph_text[start:end]
            typed = _typed_span(question, candidates, text, start) is not None
            score = coverage(text, candidates) + TYPE_BONUS * typed - RANK_PENALTY * rank
            if best is None or score > best[0]:
                best = (score, record, spans, i)
    if best is None:
        return None
    _, record, spans, i = best
    start, end = spans[i]
    if end - start < MIN_ANSWER_CHARS and i + 1 < len(spans):
        end = spans[i + 1][1]
    return Answer(record, start, end, _typed_span(question, candidates, record.paragraph_text[start:end], start))
