"""Real documents from public parser test suites (../shared/realdocs: SOURCES.tsv says where each file comes from,
FACTS.tsv holds a question and its evidence for the files with text): a corpus nobody here wrote, with the
check that its questions find their evidence, citing the right page."""

from __future__ import annotations

import csv
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .retriever import Retriever

REALDOCS = Path(__file__).resolve().parent.parent.parent / "shared" / "realdocs"


@dataclass(frozen=True)
class Fact:
    file: str
    page: int | None
    question: str
    evidence: str


@dataclass(frozen=True)
class FactResult:
    fact: Fact
    rank: int | None  # of the first result holding the evidence, 1-based; None: not in the results
    page: int | None  # the page that result cites

    @property
    def right_page(self) -> bool:
        return self.fact.page is None or self.page == self.fact.page


def facts(folder: Path = REALDOCS) -> list[Fact]:
    with (folder / "FACTS.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Fact(r["file"], int(r["page"]) if r["page"] else None, r["question"], r["evidence"]) for r in rows]


def documents(folder: Path = REALDOCS) -> list[Path]:
    """The real files themselves: everything but the two tables that describe them."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in ("FACTS.tsv", "SOURCES.tsv"))


def copy_corpus(destination: Path, files: list[Path]) -> Path:
    """The files copied into `destination` (a corpus folder): the tables with the answers stay out."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, destination / path.name)
    return destination


def plain(text: str) -> str:
    """What a reader may change without changing the text: Unicode width forms, whitespace, table cell bars."""
    return re.sub(r"[\s|]+", "", unicodedata.normalize("NFKC", text))


def check(retriever: Retriever, fact: Fact, k: int = 3) -> FactResult:
    """Where the fact's evidence first appears among the top `k` results for its question."""
    response = retriever.ask(fact.question, k)
    evidence = plain(fact.evidence)
    for result in response.results[:k]:
        if evidence in plain(result.record.text):
            return FactResult(fact, result.rank, result.record.where.get("page"))
    return FactResult(fact, None, None)
