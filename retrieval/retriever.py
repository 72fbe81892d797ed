"""Retrieval over the live index generation, reloading when `wenda index` switches it.

A question goes: validation → search words (plus English→Chinese bridge terms) → candidates (dense top
100 ∪ BM25 top 100) → features → learned ranking → confidence → extractive answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from wenda.index import runtime
from wenda.index.agreement import check_engines
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder, embedder_for
from wenda.index.errors import QueryError
from wenda.index.freshness import Freshness
from wenda.index.probes import language, probe_profile
from wenda.index.store import ChunkRecord, Snapshot, check_model, open_snapshot, read_current
from wenda.index.tokenization import normalize

from . import calibration, confidence, filters, ranker
from .answer import extract_answer
from .bridge import lexicon, translate
from .candidates import Candidates, gather
from .content import content_tokens
from .features import Question, features
from .followup import Resolution, places_of, prefer_place, resolve, resolve_history
from .followup import warm_up as followup_warm_up
from .query import clean_query
from .results import Response, Result

NO_CONTENT = (
    "问题里没有可检索的词，请换个说法 (the question has nothing to search for: only punctuation, symbols or filler)"
)


# Completions that may be wrong about the question needing context at all; a bare place ("那襄阳呢？") is not.
DOUBTFUL = ("anaphor", "coherent")


class Laps:
    """Milliseconds per stage of one question, each stage timed from the end of the one before."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.times[stage] = round((now - self._last) * 1000, 3)
        self._last = now


@dataclass(frozen=True)
class Analysis:
    """A question's candidates with their features and ranking scores: what `ask` and training share."""

    question: Question
    candidates: Candidates
    records: dict[int, ChunkRecord]
    matrix: np.ndarray
    scores: np.ndarray
    ranking: np.ndarray  # candidate positions, best first
    evidence: np.ndarray  # confidence.NAMES for the top candidate
    content_words: int


def cleaned(questions: Sequence[str]) -> list[str]:
    """The questions `clean_query` accepts, cleaned; the others (empty, over-long, control-only) left out."""
    kept = []
    for question in questions:
        try:
            kept.append(clean_query(question))
        except QueryError:
            continue
    return kept


class Retriever:
    """Loads the model and index once; `ask` is safe to call from several threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, mode: str = "hybrid") -> None:
        if mode not in ranker.MODES:
            raise ValueError(f"mode must be one of {ranker.MODES}")
        self.settings = settings
        self.mode = mode
        self.embedder = embedder or embedder_for(settings)
        self._lock = threading.Lock()
        self._reported: Snapshot | None = None  # the snapshot whose problem a front end was told about
        self._ahead: dict[str, np.ndarray] = {}  # question → vector, embedded ahead by `embed_ahead`
        self.snapshot, self.profile, self.places = self._open()
        self.calibration = calibration.ensure(self)

    def _open(self) -> tuple[Snapshot, dict, frozenset[str]]:
        pointer = read_current(self.settings.index_dir)  # read first: a switch after this is noticed next time
        snapshot = open_snapshot(self.settings.index_dir)
        check_model(snapshot.manifest, self.embedder.identity(), serving=True)
        check_engines(snapshot.manifest)
        # Indexes built before probes existed get their profile now (about a second), in memory only.
        profile = snapshot.manifest.get("probes") or probe_profile(self.embedder, snapshot.index)
        self.freshness = Freshness(self.settings.corpus, snapshot.manifest)
        self._pointer = pointer
        return snapshot, profile, places_of(snapshot.places())

    @property
    def problem(self) -> str | None:
        """Why the live generation is not the one answering (it is damaged), or None."""
        if self.snapshot.problem is None:
            return None
        return (
            f"{self.snapshot.problem}; answering from {self.snapshot.path.name}, the newest intact generation, "
            "until `wenda index` repairs it"
        )

    def unreported_problem(self) -> str | None:
        """`problem`, once per opened generation: front ends that run for a while warn when a hot reload
        lands on a fallback, without repeating it on every question."""
        snapshot = self.snapshot
        if snapshot.problem is None or self._reported is snapshot:
            return None
        self._reported = snapshot
        return self.problem

    def refresh(self) -> bool:
        """Switch to a newer generation if `wenda index` committed one (CURRENT changed); True when it did."""
        if read_current(self.settings.index_dir) == self._pointer:
            return False
        with self._lock:
            if read_current(self.settings.index_dir) != self._pointer:
                # the old one is left to the garbage collector: readers may hold it
                self.snapshot, self.profile, self.places = self._open()
                self.calibration = calibration.ensure(self)
                return True
        return False

    def warm_up(self) -> None:
        """Load now what the first questions would otherwise wait for (the English lexicon
        ~0.5 s): for front ends that run for a while, so no user's question pays it."""
        ranker.shipped()
        confidence.shipped()
        lexicon()
        followup_warm_up()

    def model_threads(self) -> int:
        """Threads for this question's model pass: the setting, or with "auto" the CPUs idle right now."""
        threads = self.settings.query_threads
        return runtime.idle_cpus() if threads == "auto" else int(threads)

    def analyze(
        self,
        question: str,
        laps: Laps | None = None,
        place: str | None = None,
        vector: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> Analysis:
        """Rank the candidates of a cleaned question; QueryError when it has nothing to search for. With
        `place` (a follow-up that only named another place), passages about that place rank first; with
        `vector`, the question's embedding from a batch (`embed_questions`), no model pass of its own; with
        `allowed`, only those chunk ids are searched (a metadata filter)."""
        laps = laps or Laps()
        snapshot, profile = self.snapshot, self.profile
        words, tokens = self.search_words(question)
        laps("words")
        # One question's search is too small to split: FAISS, BLAS run on the calling thread alone (measured
        # 0.2 ms for a top 100 on one thread, 1.8 ms on two); only the model pass may use more.
        runtime.size_native_pools(1)
        if vector is None:
            vector = self._ahead.pop(question, None)
        if vector is None:
            self.embedder.use_threads(self.model_threads())
            vector = self.embed_questions([question])[0]
        laps("model")
        candidates = gather(snapshot, vector, tokens, lap=laps, allowed=allowed)
        records = snapshot.records(candidates.ids.tolist())
        laps("pool")
        parsed = Question.of(question)
        matrix = features(parsed, candidates, records, profile.get(language(question)))
        laps("features")
        scores = ranker.mode_scores(self.mode, matrix, candidates.dense, candidates.lexical)
        ranking = ranker.order(scores, matrix) if self.mode == "hybrid" else np.argsort(-scores, kind="stable")
        if place is not None:
            ranking = prefer_place(ranking, [records.get(int(i)) for i in candidates.ids], place)
        evidence = confidence.question_features(
            matrix, scores, ranking, profile, language(question), len(words), self.calibration
        )
        laps("ranker")
        return Analysis(parsed, candidates, records, matrix, scores, ranking, evidence, len(words))

    def search_words(self, question: str) -> tuple[list[str], list[str]]:
        """The question's content words, and its BM25 query: those words and the bridge's Chinese terms for its
        English ones; QueryError when it has nothing to search for."""
        words = content_tokens(question)
        if not words:
            raise QueryError(NO_CONTENT)
        vocabulary = self.snapshot.lexical.vocabulary
        return words, list(dict.fromkeys(words + translate(question, vocabulary.__contains__)))

    def embed_ahead(self, questions: Sequence[str]) -> None:
        """Embed questions about to be asked in one model pass (cheaper per question than one pass each);
        `ask` then uses those vectors. Only the latest call's are kept."""
        texts = list(dict.fromkeys(cleaned(questions)))
        self.embedder.use_threads(self.model_threads())
        self._ahead = dict(zip(texts, self.embed_questions(texts), strict=True)) if texts else {}

    def embed_questions(self, questions: list[str]) -> np.ndarray:
        """Question vectors in one model pass, as `analyze` embeds them (lower case: measured better for English)."""
        return self.embedder.embed_queries([normalize(question) for question in questions])

    def understand(self, history: Sequence[str]) -> str | None:
        """The last turn of a conversation given as its raw questions (oldest first), as `ask` understood it:
        pass it to `ask` as `previous`. Empty, over-long or control-only entries are skipped."""
        return resolve_history(cleaned(history), self.snapshot.lexical, self.places)

    def resolve(self, question: str, previous: str | None) -> Resolution:
        """What to search for `question` after the previous turn's understood question (retrieval/followup.py)."""
        return resolve(question, previous, self.snapshot.lexical, self.places)

    def ask(
        self, question: str, k: int, previous: str | None = None, where: filters.Predicate | None = None
    ) -> Response:
        """Answer one raw question, as the next turn after `previous` (the last turn's `understood`, or None
        for a first question), among the passages whose citation meets `where` (retrieval/filters.py) when
        given. Bad input yields a Response with `error`. An index that turns out damaged raises
        DamagedIndexError (a WendaError): front ends tell the user the index is unavailable."""
        laps = Laps()
        try:
            cleaned = clean_query(question)
            self.refresh()
            allowed = filters.allowed_ids(self.snapshot, where) if where is not None else None
            if allowed is not None and not len(allowed):
                return Response(cleaned, calibrated=self.calibration.calibrated)  # nothing meets the filter
            resolution = self.resolve(cleaned, previous)
            laps("followup")
            analysis = self.analyze(resolution.text, laps, resolution.place, allowed=allowed)
            results, probability = self._rank(analysis, k)
            if resolution.kind in DOUBTFUL and probability < self.settings.min_confidence:
                # In doubt: a completed question the corpus cannot answer may have been self-contained after
                # all. Measure the question alone too and keep whichever the calibrated confidence prefers.
                alone = self.analyze(cleaned, allowed=allowed)
                alone_results, alone_probability = self._rank(alone, k)
                laps("alone")  # only in timings when the question was also measured alone
                if alone_probability > probability:
                    resolution, analysis = Resolution(cleaned), alone
                    results, probability = alone_results, alone_probability
        except QueryError as exc:
            return Response(query=question, error=str(exc))
        answerable = probability >= self.settings.min_confidence
        answer = (
            extract_answer(analysis.question, analysis.candidates, [r.record for r in results]) if answerable else None
        )
        laps("answer")
        resolved = resolution.text if resolution.completed else None
        return Response(
            cleaned,
            results,
            answer,
            answerable,
            confidence=probability,
            resolved=resolved,
            timings=laps.times,
            calibrated=self.calibration.calibrated,
        )

    def _rank(self, analysis: Analysis, k: int) -> tuple[list[Result], float]:
        """The best `k` passages, one per paragraph, and the calibrated probability that the first answers."""
        results: list[Result] = []
        seen: set[tuple[str, int]] = set()  # overlapping windows of one paragraph: keep the best only
        for i in analysis.ranking:
            record = analysis.records.get(int(analysis.candidates.ids[i]))
            if record is None or (record.source, record.paragraph) in seen:
                continue
            seen.add((record.source, record.paragraph))
            dense, bm25 = float(analysis.candidates.dense[i]), float(analysis.candidates.lexical[i])
            stale = self.freshness.stale(record.source)
            results.append(Result(len(results) + 1, float(analysis.scores[i]), record, dense, bm25, stale))
            if len(results) == k:
                break
        return results, (confidence.shipped().probability(analysis.evidence) if results else 0.0)
