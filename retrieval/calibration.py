"""Self-calibration: what a right and a wrong best match look like in *this* index, from its own text.

The confidence model (confidence.py) reads evidence such as the best cosine; but what a cosine means changes
with the corpus (a corpus of near-duplicate notices, one long manual, Wikipedia among news): the same 0.88 is
a sure answer in one and a near miss in another. So every index measures it on itself when it is built:

- questions from a fixed sample of its passages: a clause with a number, a date or a duration replaced by the
  question word ("…完成职业技能培训多少以上？"), else the passage's longest words as a keyword query;
- for each, from the first-stage search (no ranking), the cosine and the BM25 share of the passage it was made
  from (what a right answer scores here) and of the best passage of another paragraph (what the best wrong
  one scores: the question with its source held out);
- their means and spreads, stored beside the index as `calibration.json` with the generation measured.

The confidence model reads the top result's cosine *between* this index's wrong and right levels
(`between`): 0 at a typical best wrong match, 1 at a typical right one, whatever the corpus. English
questions, which score lower everywhere, are read against the training corpora's English levels. An index
too small to make `MIN_QUESTIONS` questions gets the training corpora's levels and says so
(`method: "default"`); an older index without the file gets them measured when it is opened (a fraction of
a second), stored when its folder is writable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from wenda.index.chunking import sentence_spans
from wenda.index.errors import QueryError
from wenda.index.furniture import is_furniture
from wenda.index.store import ChunkRecord
from wenda.index.tokenization import tokenize

from .candidates import gather
from .features import LOOKS

if TYPE_CHECKING:
    from .retriever import Retriever

CALIBRATION_FILE = "calibration.json"
SAMPLE = 32  # passages questioned: bounded work on any corpus (under a second on 2 cores)
MIN_QUESTIONS = 12  # fewer usable questions than this: the training corpora's levels
MIN_SENTENCE = 12
MAX_QUESTION = 40
MIN_STEM = 6
KEYWORDS = 4
ASK_WORD = {"number": "多少", "date": "什么时候", "duration": "多久"}
CLAUSE = re.compile(r"[，,；;：:。！？!?]")
MEASURED = ("dense", "bm25_idf_share")  # feature columns whose levels are measured
VERSION = 2
# The levels over the training corpora (python -m wenda.retrieval.training prints them): what an index too
# small to measure gets. {language: {column: {"right": [mean, std], "wrong": [mean, std]}}}
DEFAULT_LEVELS: dict = {  # the mean of the bundled articles', the news and the CMRC indexes' levels
    "zh": {
        "dense": {"right": [0.891, 0.024], "wrong": [0.892, 0.014]},
        "bm25_idf_share": {"right": [0.466, 0.088], "wrong": [0.306, 0.12]},
    },
    "en": {
        "dense": {"right": [0.768, 0.022], "wrong": [0.79, 0.015]},
        "bm25_idf_share": {"right": [0.15, 0.092], "wrong": [0.113, 0.072]},
    },
}


@dataclass(frozen=True)
class Calibration:
    """The levels of right and best-wrong evidence in one index, per language (see the module docstring)."""

    levels: dict = field(default_factory=lambda: DEFAULT_LEVELS)
    method: str = "default"  # "measured", "default" (too small to measure)
    questions: int = 0
    generation: str | None = None
    reason: str | None = None
    stored: bool = True  # False: measured when opened, not (yet) written beside the index

    def between(self, column: str, value: float, language: str) -> float:
        """Where `value` lies from this index's typical best wrong match (0) to its typical right one (1)."""
        level = (self.levels.get(language) or self.levels.get("zh") or DEFAULT_LEVELS["zh"])[column]
        wrong, right = level["wrong"][0], level["right"][0]
        spread = max(right - wrong, 0.5 * (level["wrong"][1] + level["right"][1]), 1e-3)
        return (value - wrong) / spread

    @property
    def calibrated(self) -> bool:
        return self.method == "measured" and self.stored

    def describe(self) -> str:
        if self.method == "measured":
            where = "" if self.stored else " (in memory: the index folder is not writable)"
            return f"confidence calibrated for this index on {self.questions} questions made from its text{where}"
        return f"confidence not calibrated for this index ({self.reason}): the training corpora's levels are used"


@dataclass(frozen=True)
class Generated:
    question: str
    record: ChunkRecord
    sentence: str


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def sample_records(retriever: Retriever, size: int = SAMPLE) -> list[ChunkRecord]:
    """A fixed, spread sample of content passages: chunk ids ordered by a hash, first `size` usable."""
    snapshot = retriever.snapshot
    total = int(snapshot.manifest.get("next_id") or len(snapshot))
    order = sorted(range(total), key=lambda i: hashlib.blake2b(str(i).encode(), digest_size=8).digest())
    chosen: list[ChunkRecord] = []
    for begin in range(0, len(order), size * 4):
        records = snapshot.records(order[begin : begin + size * 4])
        for i in order[begin : begin + size * 4]:
            record = records.get(i)
            if record is not None and not is_furniture(record.text) and len(record.text) >= MIN_SENTENCE:
                chosen.append(record)
            if len(chosen) == size:
                return chosen
    return chosen


def question_from(record: ChunkRecord, salt: int) -> Generated | None:
    """One question made from the passage: the clause around a number, date or duration with that span
    turned into its question word ("…完成职业技能培训多少以上？"), else the sentence's longest words."""
    text = record.text
    sentences = [text[a:b].strip() for a, b in sentence_spans(text, 200) if len(text[a:b].strip()) >= MIN_SENTENCE]
    if not sentences:
        return None
    sentences = sentences[salt % len(sentences) :] + sentences[: salt % len(sentences)]
    for sentence in sentences:
        for kind in ("number", "date", "duration"):
            match = LOOKS[kind].search(sentence)
            if match is None:
                continue
            clauses = CLAUSE.split(sentence[: match.start()])
            stem = clauses[-1] if len(clauses[-1]) >= MIN_STEM or len(clauses) < 2 else "".join(clauses[-2:])
            stem = stem[-MAX_QUESTION:]
            tail = CLAUSE.split(sentence[match.end() :], maxsplit=1)[0][:8].rstrip("。！？!?")
            if len(stem) >= MIN_STEM:
                return Generated(f"{stem}{ASK_WORD[kind]}{tail}？", record, sentence)
    sentence = sentences[0]
    words = sorted(set(tokenize(sentence)), key=lambda w: (-len(w), w))[:KEYWORDS]
    return Generated(" ".join(words), record, sentence) if len(words) >= 2 else None


def is_source(record: ChunkRecord | None, generated: Generated) -> bool:
    """The passage the question was made from: its paragraph, or any passage holding its sentence."""
    if record is None:
        return False
    same = record.source == generated.record.source and record.paragraph == generated.record.paragraph
    return same or nfkc(generated.sentence) in nfkc(record.text)


def spread_of(values: list[float]) -> list[float]:
    return [float(np.mean(values)), float(np.std(values))] if values else [0.0, 0.0]


def measure(retriever: Retriever, sample: int = SAMPLE) -> Calibration:
    """Generate and ask the questions of the retriever's live index (one model pass for all, the first-stage
    search of each, no ranking) and record the evidence of their source passage and of the best other one."""
    generation = retriever.snapshot.path.name
    made = [g for n, record in enumerate(sample_records(retriever, sample)) if (g := question_from(record, n))]
    right: dict[str, list[float]] = {name: [] for name in MEASURED}
    wrong: dict[str, list[float]] = {name: [] for name in MEASURED}
    vectors = retriever.embed_questions([g.question for g in made]) if made else []
    for generated, vector in zip(made, vectors, strict=True):
        try:
            _, tokens = retriever.search_words(generated.question)
        except QueryError:
            continue
        candidates = gather(retriever.snapshot, vector, tokens)
        records = retriever.snapshot.records(candidates.ids.tolist())
        source = np.array([is_source(records.get(int(i)), generated) for i in candidates.ids], dtype=bool)
        if not source.any() or source.all():
            continue
        idf_mass = float(candidates.idf[candidates.known].sum())
        columns = {"dense": candidates.dense, "bm25_idf_share": candidates.lexical / idf_mass if idf_mass else None}
        if columns["bm25_idf_share"] is None:
            continue
        for name, column in columns.items():
            right[name].append(float(column[source].max()))
            wrong[name].append(float(column[~source].max()))
    asked = len(right["dense"])
    if asked < MIN_QUESTIONS:
        reason = f"only {asked} question{'s' if asked != 1 else ''} could be made from its text, {MIN_QUESTIONS} needed"
        return Calibration(method="default", questions=asked, generation=generation, reason=reason)
    measured = {name: {"right": spread_of(right[name]), "wrong": spread_of(wrong[name])} for name in MEASURED}
    return Calibration({**DEFAULT_LEVELS, "zh": measured}, "measured", asked, generation)


def path_of(index_dir: Path) -> Path:
    return index_dir / CALIBRATION_FILE


def load(index_dir: Path, generation: str) -> Calibration | None:
    """The stored calibration if it was measured on `generation` (the one answering), else None."""
    try:
        data = json.loads(path_of(index_dir).read_text(encoding="utf-8"))
        if data.get("version") != VERSION or data.get("generation") != generation:
            return None
        found = Calibration(**{k: data[k] for k in ("levels", "method", "questions", "generation", "reason")})
        for lang in found.levels.values():  # a damaged or hand-edited file is measured again, never trusted
            for name in MEASURED:
                for kind in ("right", "wrong"):
                    mean, std = lang[name][kind]
                    if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
                        return None
        return found
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def save(index_dir: Path, calibration: Calibration) -> bool:
    """Write atomically; False when the index folder is not writable."""
    data = {"version": VERSION, **{k: v for k, v in calibration.__dict__.items() if k != "stored"}}
    target = path_of(index_dir)
    temporary = target.with_name(f".{CALIBRATION_FILE}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, target)
        return True
    except OSError:
        temporary.unlink(missing_ok=True)
        return False


def ensure(retriever: Retriever) -> Calibration:
    """The live index's calibration: the stored one when it was measured on this generation, else measured
    now (only questions are embedded, no passage) and stored when the folder is writable."""
    found = load(retriever.settings.index_dir, retriever.snapshot.path.name)
    if found is None:
        found = measure(retriever)
        found = replace(found, stored=save(retriever.settings.index_dir, found))
    return found
