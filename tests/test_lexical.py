"""index.lexical: bm25s scores compared against a plain reference implementation of Lucene BM25."""

import math
from pathlib import Path

import numpy as np
from wenda.index.lexical import LexicalIndex

DOCS = [["安阳", "出租车", "纯电动"], ["运城", "养老", "机构", "养老"], ["安阳", "小区", "改造", "改造", "改造"], []]
IDS = [10, 11, 12, 13]


def reference_bm25(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        score = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))  # Lucene drops the (k1 + 1) factor
        scores.append(score)
    return scores


def test_scores_match_reference_bm25() -> None:
    index = LexicalIndex.build(IDS, DOCS)
    # bm25s counts the placeholder token of the empty document, so compare with it included
    docs = [d or [""] for d in DOCS]
    for query in (["安阳"], ["养老", "机构"], ["安阳", "改造", "未知"]):
        assert np.allclose(index.scores(query), reference_bm25(query, docs), atol=1e-5)


def test_search_returns_ids_with_positive_scores_best_first() -> None:
    index = LexicalIndex.build(IDS, DOCS)
    assert [i for i, _ in index.search(["安阳", "改造"], 10)] == [12, 10]
    assert index.search(["没有"], 10) == [] and index.search([], 10) == []


def test_idf_and_positions() -> None:
    index = LexicalIndex.build(IDS, DOCS)
    idf = index.idf(["安阳", "养老", "没有"])
    assert idf[0] < idf[1] < idf[2]
    assert index.position(np.array([12, 10])).tolist() == [2, 0]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build(IDS, DOCS)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert np.allclose(loaded.scores(["安阳", "养老"]), index.scores(["安阳", "养老"]))
    assert loaded.ids.tolist() == IDS


def test_loaded_scores_are_bm25s_scores(tmp_path: Path) -> None:
    """Answering sums the saved arrays itself: the same float32 scores as bm25s's own loader and scorer, a
    repeated query word counted twice."""
    import bm25s

    index = LexicalIndex.build(IDS, DOCS)
    index.save(tmp_path / "bm25")
    ours = LexicalIndex.load(tmp_path / "bm25", mmap=True)
    theirs = bm25s.BM25.load(str(tmp_path / "bm25"))
    for query in (["安阳"], ["改造", "改造", "安阳"], ["未知"], []):
        expected = theirs.get_scores_from_ids(theirs.get_tokens_ids(query)) if query != ["未知"] and query else None
        if expected is None:
            assert not ours.scores(query).any()
        else:
            assert np.array_equal(ours.scores(query), expected)


def test_a_damaged_vocabulary_is_a_value_error(tmp_path: Path) -> None:
    index = LexicalIndex.build(IDS, DOCS)
    index.save(tmp_path / "bm25")
    (tmp_path / "bm25" / "vocab.index.json").write_text('{"安阳": 0}', encoding="utf-8")
    try:
        LexicalIndex.load(tmp_path / "bm25")
    except ValueError as exc:
        assert "score columns" in str(exc)
    else:
        raise AssertionError("a vocabulary that does not match the score matrix was accepted")
