"""Per-candidate ranking features: what the learned ranker and the confidence model see.

Every feature is relative to the question's own candidate set (ratios, gaps, ranks, shares) or to the
index's own off-topic probes, never an absolute score of one corpus, so a model trained on some corpora
transfers to one it has never seen. Features whose range depends on how a corpus is cut into files
(chunks per document, passage length) were tried and dropped: they did not transfer (docs/quality.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from wenda.index.furniture import is_furniture
from wenda.index.store import ChunkRecord
from wenda.index.tokenization import normalize

from .candidates import Candidates
from .overlap import best_sentence_share, share

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
# What the question asks for, and how a passage that answers it looks (answer-type cues).
ASKS = {
    "number": re.compile(
        r"多少|几[个位家项条次年月天台人户所]?|百分之|比例|比重|占比|\w率"
        r"|how (many|much)|what (percentage|share|rate)"
    ),
    "duration": re.compile(r"多久|多长时间|多少时间|几个?(小时|天|月|周|工作日)|how long"),
    "date": re.compile(r"什么时候|何时|哪一?年|几月|哪一?天|哪个月|when|what year|what date"),
    "place": re.compile(
        r"哪里|哪儿|在哪|哪个(省|市|县|区|地方|国家|城市)|哪些地方|何地|where|which (city|county|province|place)"
    ),
    "person": re.compile(r"谁|哪位|何人|什么人|who\b|whom"),
}
NUMERAL = r"(\d[\d.,]*|[一二两三四五六七八九十百千半]+)"
LOOKS = {
    "duration": re.compile(NUMERAL + r"\s*个?(小时|天|分钟|周|星期|个?月|年|工作日|个工作日|秒)"),
    "number": re.compile(
        r"\d[\d.,]*\s*(%|％|个|万|亿|千|百|元|人|户|家|台|项|公里|千米|米|吨|平方|亩|天|小时|分钟|倍|次|所|座|辆|条|件|余|多|名|份|年)"
    ),
    "date": re.compile(r"\d{4}\s*年|\d{1,2}\s*月(\d{1,2}\s*日)?|今年|去年|明年|上半年|下半年|\d{4}[-/.]\d{1,2}"),
    "place": re.compile(r"[\u4e00-\u9fff]{1,6}(省|市|县|区|镇|乡|村|街道|州|国)"),
    "person": re.compile(r"[\u4e00-\u9fff]{2,4}(说|表示|介绍|指出|认为|称)|[\u4e00-\u9fff]·[\u4e00-\u9fff]"),
}

NAMES = (
    "dense",
    "dense_gap",
    "dense_z",
    "dense_rank",
    "bm25_ratio",
    "bm25_z",
    "bm25_rank",
    "coverage",
    "sentence_coverage",
    "title_coverage",
    "bigram_share",
    "doc_dense_gap",
    "doc_bm25_ratio",
    "answer_type",
    "furniture",
    "trust",
    "cross_lingual",
    "dense_vs_probes",
    "bm25_idf_share",
    "query_words",
)

COLUMN = {name: i for i, name in enumerate(NAMES)}
FOCUS_BEFORE = 6  # characters before a final question word that name what it asks about


@dataclass(frozen=True)
class Question:
    """What the features need to know about the question itself."""

    text: str
    asks: tuple[str, ...]
    bigrams: frozenset[str]
    cross_lingual: bool
    focus: str = ""  # the thing counted or named: after the question word ("多少台纯电动车" → "纯电动车"), or
    # when nothing follows it, just before it ("开工率是多少" → "开工率是")

    @classmethod
    def of(cls, text: str) -> Question:
        normalized = normalize(text)
        runs = CJK.findall(normalized)
        bigrams = frozenset(run[i : i + 2] for run in runs for i in range(len(run) - 1))
        found = [(kind, match) for kind, pattern in ASKS.items() if (match := pattern.search(normalized))]
        focus = ""
        if found:
            match = found[0][1]
            after = "".join(CJK.findall(normalized[match.end() :]))
            focus = after if len(after) >= 2 else normalized[max(0, match.start() - FOCUS_BEFORE) : match.start()]
        return cls(normalized, tuple(kind for kind, _ in found), bigrams, not runs, focus)


@lru_cache(maxsize=20_000)
def normalized_passage(text: str) -> str:
    """`normalize` of a passage, remembered: the same chunks come back as candidates question after question,
    and normalizing them was a third of the feature time (~40 µs a chunk)."""
    return normalize(text)


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the highest value, 1 for the next, …"""
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values), dtype=np.float32)
    return ranks


def _z(values: np.ndarray) -> np.ndarray:
    spread = float(values.std()) if len(values) else 0.0
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)


def trust(candidates: Candidates) -> float:
    """Share of the query's IDF mass made of words the corpus uses: 0 for a question BM25 cannot match."""
    total = float(candidates.idf.sum())
    return float(candidates.idf[candidates.known].sum()) / total if total > 0 else 0.0


def features(
    question: Question, candidates: Candidates, records: dict[int, ChunkRecord], probes: dict | None
) -> np.ndarray:
    """Feature matrix (candidates × NAMES) for the candidates, in `candidates.ids` order; `probes` is the
    index's off-topic cosine profile for the question's language ({"mean", "std"}), which turns a cosine
    into "how far above an off-topic question", comparable across corpora and models."""
    n = len(candidates.ids)
    matrix = np.zeros((n, len(NAMES)), dtype=np.float32)
    if n == 0:
        return matrix
    dense, lexical = candidates.dense, candidates.lexical
    top_lexical = float(lexical.max())
    bm25_ratio = lexical / top_lexical if top_lexical > 0 else np.zeros(n, np.float32)
    weights = candidates.idf / candidates.idf.sum() if candidates.idf.sum() > 0 else candidates.idf
    sources = []
    contexts: dict[tuple, str] = {}
    for position, i in enumerate(candidates.ids):
        record = records.get(int(i))
        if record is None:
            sources.append(None)
            continue
        sources.append(record.source)
        text = normalized_passage(record.text)
        heading = (record.place, record.title, record.section)  # shared by a document's chunks: normalize once
        if heading not in contexts:
            contexts[heading] = normalize(" ".join(part for part in heading if part))
        context = contexts[heading]
        row = matrix[position]
        row[COLUMN["coverage"]] = share(context + "\n" + text, candidates.tokens, weights)
        row[COLUMN["sentence_coverage"]] = best_sentence_share(text, candidates.tokens, weights)
        row[COLUMN["title_coverage"]] = share(context, candidates.tokens, weights)
        if question.bigrams:
            shared = sum(b in text or b in context for b in question.bigrams)
            row[COLUMN["bigram_share"]] = shared / len(question.bigrams)
        row[COLUMN["answer_type"]] = any(LOOKS[kind].search(text) for kind in question.asks)
        row[COLUMN["furniture"]] = is_furniture(record.text)
    matrix[:, COLUMN["dense"]] = dense
    matrix[:, COLUMN["dense_gap"]] = dense - dense.max()
    matrix[:, COLUMN["dense_z"]] = _z(dense)
    matrix[:, COLUMN["dense_rank"]] = np.log1p(_ranks(dense))
    matrix[:, COLUMN["bm25_ratio"]] = bm25_ratio
    matrix[:, COLUMN["bm25_z"]] = _z(lexical)
    matrix[:, COLUMN["bm25_rank"]] = np.log1p(_ranks(lexical))
    # Document-level aggregates: a passage of a document that matches elsewhere too is more likely right.
    by_source: dict[str | None, list[int]] = {}
    for position, source in enumerate(sources):
        by_source.setdefault(source, []).append(position)
    for source, rows in by_source.items():
        if source is not None:
            matrix[rows, COLUMN["doc_dense_gap"]] = dense[rows].max() - dense.max()
            matrix[rows, COLUMN["doc_bm25_ratio"]] = bm25_ratio[rows].max()
    matrix[:, COLUMN["trust"]] = trust(candidates)
    matrix[:, COLUMN["cross_lingual"]] = question.cross_lingual
    if probes:
        matrix[:, COLUMN["dense_vs_probes"]] = (dense - probes["mean"]) / probes["std"]
    # BM25 against the question's own IDF mass: near 1 when a passage holds every rare question word.
    idf_mass = float(candidates.idf[candidates.known].sum())
    matrix[:, COLUMN["bm25_idf_share"]] = lexical / idf_mass if idf_mass > 0 else 0.0
    matrix[:, COLUMN["query_words"]] = np.log1p(len(candidates.tokens))
    return matrix
