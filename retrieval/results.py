"""Response types and their JSON form (the `wenda ask --json` contract)."""
from __future__ import annotations

from dataclasses import dataclass, field

from index.store import ChunkRecord


@dataclass(frozen=True)
class Result:
    """One ranked passage with its citation."""

    rank: int
    score: float
    record: ChunkRecord

    def citation(self) -> dict:
        r = self.record
        return {
            "source": r.source,
            "line": r.line,
            "paragraph": r.paragraph,
            "title": r.title,
            "section": r.section,
            "place": r.place,
            "publisher": r.publisher,
            "date": r.date,
            "start": r.start,
            "end": r.end,
        }

    def to_dict(self) -> dict:
        return {"rank": self.rank, "score": round(self.score, 4), "text": self.record.text, "citation": self.citation()}


@dataclass(frozen=True)
class Response:
    """The answer to one question: ranked results, or an error explaining why there are none."""

    query: str
    results: list[Result] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        data: dict = {"query": self.query, "results": [result.to_dict() for result in self.results]}
        if self.error is not None:
            data["error"] = self.error
        return data
