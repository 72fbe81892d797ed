"""Response types and their JSON form (the `wenda ask --json` contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wenda.index.store import ChunkRecord

from .answer import Answer


def citation(record: ChunkRecord, stale: bool) -> dict:
    """Where a passage comes from: enough to open the file at the right place (`wenda show SOURCE:LOCATOR`);
    `line` is within the page or chapter when `page` or `chapter` is given; `stale` when the file changed
    after indexing, so the place may now hold something else. Tags and fields declared for the file
    (index/metadata.py) come along; they can never hide one of these."""
    return {
        **record.extra,
        "source": record.source,
        "line": record.line,
        "lines": record.lines,
        **record.where,  # page, chapter, table, row, footnote: as the format has them
        "locator": record.locator,
        "paragraph": record.paragraph,
        "title": record.title,
        "section": record.section,
        "place": record.place,
        "publisher": record.publisher,
        "date": record.date,
        "url": record.url,
        "format": record.format,
        "start": record.start,
        "end": record.end,
        "stale": stale,
    }


@dataclass(frozen=True)
class Result:
    """One ranked passage: `score` orders results; `dense` is the cosine, `bm25` the lexical score."""

    rank: int
    score: float
    record: ChunkRecord
    dense: float = 0.0
    bm25: float = 0.0
    stale: bool = False  # the cited file changed after indexing (retrieval/freshness.py)

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "dense": round(self.dense, 4),
            "bm25": round(self.bm25, 4),
            "text": self.record.text,
            "citation": citation(self.record, self.stale),
        }


@dataclass(frozen=True)
class Response:
    """The answer to one question: ranked results, the extracted answer, or an error explaining why there are none."""

    query: str
    results: list[Result] = field(default_factory=list)
    answer: Answer | None = None
    answerable: bool = False
    confidence: float = 0.0  # calibrated probability that the top result answers the question
    error: str | None = None
    resolved: str | None = None  # the question as completed from the conversation, when it was a follow-up
    calibrated: bool = True  # False: the index has no calibration of its own yet (`wenda index` fits one)
    # milliseconds per stage (Laps), for benchmarks and logs; not part of the JSON contract
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def understood(self) -> str:
        """The question as searched: what the next turn of the conversation follows."""
        return self.resolved or self.query

    def to_dict(self) -> dict:
        answer = None
        if self.answer is not None:
            stale = any(r.stale and r.record.source == self.answer.record.source for r in self.results)
            answer = {
                "text": self.answer.text,
                "citation": {**citation(self.answer.record, stale), "start": self.answer.start, "end": self.answer.end},
            }
            if self.answer.span is not None:
                start, end = self.answer.span
                answer["span"] = {"text": self.answer.record.paragraph_text[start:end], "start": start, "end": end}
        data: dict = {
            "query": self.query,
            "resolved": self.resolved,
            "answerable": self.answerable,
            "confidence": round(self.confidence, 4),
            "calibrated": self.calibrated,
            "answer": answer,
            "results": [result.to_dict() for result in self.results],
        }
        if self.error is not None:
            data["error"] = self.error
        return data
