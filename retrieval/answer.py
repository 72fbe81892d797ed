"""Extractive answer: the one or two sentences of the top passages that best answer the question."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.chunking import sentence_spans
from index.config import MAX_CHUNK_CHARS
from index.embeddings import Embedder
from index.store import ChunkRecord

from .candidates import Candidates
from .overlap import coverage

# Passages whose sentences compete for the answer: the top ones only, since rank already carries evidence.
ANSWER_PASSAGES = 3
# A sentence this short rarely stands alone ("截至目前，……。"), so the next one is added.
MIN_ANSWER_CHARS = 20
QUANTITY_QUESTION = re.compile(r"多少|几|百分|比例|率|how (many|much)|what (percentage|share)|when|哪一?年", re.I)
DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Answer:
    """`text == record.paragraph_text[start:end]`: offsets are in the cited paragraph."""

    record: ChunkRecord
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.record.paragraph_text[self.start : self.end]


def _sentences(record: ChunkRecord) -> list[tuple[int, int]]:
    """Sentence spans of a chunk, as paragraph offsets."""
    return [(record.start + a, record.start + b) for a, b in sentence_spans(record.text, MAX_CHUNK_CHARS)]


def _widen(record: ChunkRecord, spans: list[tuple[int, int]], best: int) -> tuple[int, int]:
    start, end = spans[best]
    if end - start < MIN_ANSWER_CHARS and best + 1 < len(spans):
        end = spans[best + 1][1]
    return start, end


def extract_answer(
    question: str, candidates: Candidates, records: list[ChunkRecord], embedder: Embedder
) -> Answer | None:
    """Best sentence by the IDF mass of question words it contains (a quantity question favours numbers);
    when no sentence shares a word with the question (an English question), by dense similarity."""
    pool = records[:ANSWER_PASSAGES]
    options = [(record, spans, i) for record in pool if (spans := _sentences(record)) for i in range(len(spans))]
    if not options:
        return None
    wants_number = bool(QUANTITY_QUESTION.search(question))
    scores = []
    for record, spans, i in options:
        text = record.paragraph_text[spans[i][0] : spans[i][1]]
        number_bonus = 0.2 * (wants_number and bool(DIGIT.search(text)))
        scores.append(coverage(text, candidates) + number_bonus - 0.05 * pool.index(record))
    if max(scores) <= 0.2 + 1e-9:  # no question word in any sentence (English): compare meanings instead,
        options = [option for option in options if option[0] is pool[0]]  # in the top passage only, for speed
        texts = [record.paragraph_text[spans[i][0] : spans[i][1]] for record, spans, i in options]
        scores = list(embedder.embed_passages(texts) @ embedder.embed_queries([question])[0])
    record, spans, i = options[int(np.argmax(scores))]
    start, end = _widen(record, spans, i)
    return Answer(record, start, end)
