"""Self-calibration: what a right and a wrong best match look like in *this* index, from its own text.

The confidence model (confidence.py) reads evidence such as the best cosine; but what a cosine means changes
with the corpus (a corpus of near-duplicate notices, one long manual, Wikipedia among news): the same 0.88 is
a sure answer in one and a near miss in another. So every index measures it on itself when it is built:

- questions from a fixed sample of its passages: a clause with a number, a date or a duration replaced by the
  question word ("…完成职业技能培训多少以上？"), else the passage's longest words as a keyword query;
- for each, from the first-stage search (no ranking), the cosine of the passage it was made from (what a
  right answer scores here) and of the best passage of another paragraph (what the best wrong one scores:
  the question with its source held out);
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
import heapq
import json
import math
import os
import re
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
SAMPLE = 32  # passages questioned: bounded work on any corpus (0.34 s on the bundled articles)
MIN_QUESTIONS = 12  # fewer usable questions than this: the training corpora's levels
MIN_SENTENCE = 12
MAX_QUESTION = 40
MIN_STEM = 6
KEYWORDS = 4
ASK_WORD = {"number": "多少", "date": "什么时候", "duration": "多久"}
CLAUSE = re.compile(r"[，,；;：:。！？!?]")
VERSION = 3
# The cosine levels {"right": [mean, std], "wrong": [mean, std]} over the training corpora (the mean of the
# bundled articles', the news and the CMRC indexes'; `python -m wenda.retrieval.training` prints each): what
# English questions are read against everywhere, and Chinese ones in an index too small to measure.
DEFAULT_LEVELS: dict = {
    "zh": {"right": [0.891, 0.024], "wrong": [0.892, 0.014]},
    "en": {"right": [0.768, 0.022], "wrong": [0.79, 0.015]},
}


@dataclass(frozen=True)
class Calibration:
    """The cosine levels of right and best-wrong matches of Chinese questions in one index (module docstring)."""

    dense: dict = field(default_factory=lambda: DEFAULT_LEVELS["zh"])
    method: str = "default"  # "measured", "default" (too small to measure)
    questions: int = 0
    generation: str | None = None
    reason: str | None = None
    stored: bool = True  # False: measured when opened, not (yet) written beside the index

    def between(self, value: float, language: str) -> float:
        """Where a cosine lies from this index's typical best wrong match (0) to its typical right one (1)."""
        level = self.dense if language == "zh" else DEFAULT_LEVELS["en"]
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


def sample_records(retriever: Retriever, size: int = SAMPLE) -> list[ChunkRecord]:
    """A fixed, spread sample of content passages: chunk ids ordered by a hash, the first `size` usable (the
    models were trained on the levels of this sample: changing the order means retraining)."""
    snapshot = retriever.snapshot
    total = int(snapshot.manifest.get("next_id") or len(snapshot))
    chosen: list[ChunkRecord] = []
    taken = 0
    while taken < total:  # the order's first size × 4 ids, then twice as many, …: never every id sorted at once
        wanted = min(total, max(size * 4, taken * 2))
        order = heapq.nsmallest(wanted, range(total), key=_hashed)[taken:]
        taken = wanted
        for begin in range(0, len(order), size * 4):
            batch = order[begin : begin + size * 4]
            records = snapshot.records(batch)
            for i in batch:
                record = records.get(i)
                if record is not None and not is_furniture(record.text) and len(record.text) >= MIN_SENTENCE:
                    chosen.append(record)
                if len(chosen) == size:
                    return chosen
    return chosen


def _hashed(chunk_id: int) -> bytes:
    return hashlib.blake2b(str(chunk_id).encode(), digest_size=8).digest()


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
    return same or generated.sentence in record.text  # both verbatim corpus text


def measure(retriever: Retriever, sample: int = SAMPLE) -> Calibration:
    """Generate and ask the questions of the retriever's live index (one model pass for all, the first-stage
    search of each, no ranking) and record the cosine of their source passage and of the best other one."""
    generation = retriever.snapshot.path.name
    made = [g for n, record in enumerate(sample_records(retriever, sample)) if (g := question_from(record, n))]
    right: list[float] = []
    wrong: list[float] = []
    vectors = retriever.embed_questions([g.question for g in made]) if made else []
    for generated, vector in zip(made, vectors, strict=True):
        try:
            _, tokens = retriever.search_words(generated.question)
        except QueryError:
            continue
        candidates = gather(retriever.snapshot, vector, tokens)
        retriever.snapshot.drop_pages()  # a big index: the lists and columns read stay in the page cache only
        records = retriever.snapshot.records(candidates.ids.tolist())
        source = np.array([is_source(records.get(int(i)), generated) for i in candidates.ids], dtype=bool)
        if source.any() and not source.all():
            right.append(float(candidates.dense[source].max()))
            wrong.append(float(candidates.dense[~source].max()))
    if len(right) < MIN_QUESTIONS:
        count = f"{len(right)} question{'s' if len(right) != 1 else ''}"
        reason = f"only {count} could be made from its text, {MIN_QUESTIONS} needed"
        return Calibration(method="default", questions=len(right), generation=generation, reason=reason)
    levels = {name: [float(np.mean(v)), float(np.std(v))] for name, v in (("right", right), ("wrong", wrong))}
    return Calibration(levels, "measured", len(right), generation)


def path_of(index_dir: Path) -> Path:
    return index_dir / CALIBRATION_FILE


def load(index_dir: Path, generation: str) -> Calibration | None:
    """The stored calibration if it was measured on `generation` (the one answering), else None; a damaged
    or hand-edited file is measured again, never trusted."""
    try:
        data = json.loads(path_of(index_dir).read_text(encoding="utf-8"))
        if data.get("version") != VERSION or data.get("generation") != generation:
            return None
        found = Calibration(**{k: data[k] for k in ("dense", "method", "questions", "generation", "reason")})
        values = [float(x) for kind in ("right", "wrong") for x in found.dense[kind]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return found if all(math.isfinite(x) for x in values) and min(values[1], values[3]) >= 0 else None


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
