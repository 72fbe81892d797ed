"""index.lexical: the out-of-core writer against bm25s (the same files byte for byte) and against a plain reference
implementation of Lucene BM25."""

import math
from pathlib import Path

import numpy as np
import pytest
from wenda.index import lexical
from wenda.index.lexical import LexicalIndex

DOCS = [["安阳", "出租车", "纯电动"], ["运城", "养老", "机构", "养老"], ["安阳", "小区", "改造", "改造", "改造"], []]
IDS = [10, 11, 12, 13]
ROOT = Path(__file__).resolve().parents[1]


def written(folder: Path, ids: list[int] = IDS, docs: list[list[str]] = DOCS, **options: int) -> LexicalIndex:
    lexical.write(folder, ids, docs, **options)
    return LexicalIndex.load(folder)


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


def test_scores_match_reference_bm25(tmp_path: Path) -> None:
    index = written(tmp_path)
    # bm25s counts the placeholder token of the empty document, so compare with it included
    docs = [d or [""] for d in DOCS]
    for query in (["安阳"], ["养老", "机构"], ["安阳", "改造", "未知"]):
        assert np.allclose(index.scores(query), reference_bm25(query, docs), atol=1e-5)


def test_search_returns_ids_with_positive_scores_best_first(tmp_path: Path) -> None:
    index = written(tmp_path)
    assert [i for i, _ in index.search(["安阳", "改造"], 10)] == [12, 10]
    assert index.search(["没有"], 10) == [] and index.search([], 10) == []


def test_idf_and_positions(tmp_path: Path) -> None:
    index = written(tmp_path)
    idf = index.idf(["安阳", "养老", "没有"])
    assert idf[0] < idf[1] < idf[2]
    assert index.position(np.array([12, 10])).tolist() == [2, 0]


def test_written_files_are_bm25s_files_byte_for_byte(tmp_path: Path) -> None:
    """The seed articles' real tokens, written in blocks far smaller than the corpus (many sorted runs, many
    column ranges), give exactly the arrays and vocabulary bm25s builds in memory; and bm25s loads them."""
    import bm25s
    from wenda.index.tokenization import tokenize

    paragraphs = [
        line for path in sorted((ROOT / "corpus").glob("*.txt")) for line in path.read_text("utf-8").splitlines()
    ]
    docs = [tokenize(line) for line in paragraphs] + [[]]  # an empty document too
    ids = list(range(5, 5 + 2 * len(docs), 2))
    words = sorted({word for tokens in docs for word in (tokens or [""])})
    vocabulary = {word: number for number, word in enumerate(words)}
    reference = bm25s.BM25()
    reference.index(([[vocabulary[w] for w in (tokens or [""])] for tokens in docs], vocabulary), show_progress=False)
    reference.save(str(tmp_path / "bm25s"), show_progress=False)
    for block in (1_000, 50_000, lexical.BLOCK_PAIRS):
        ours = tmp_path / f"ours-{block}"
        lexical.write(ours, ids, docs, block_pairs=block)
        for name in [*lexical.ARRAY_FILES.values(), lexical.VOCAB_FILE]:
            assert (ours / name).read_bytes() == (tmp_path / "bm25s" / name).read_bytes(), (block, name)
        assert np.load(ours / lexical.IDS_FILE).tolist() == ids
        assert not [p.name for p in ours.iterdir() if p.name.startswith(".")], "the sorted runs were left behind"
    loaded = bm25s.BM25.load(str(tmp_path / f"ours-{lexical.BLOCK_PAIRS}"))
    assert loaded.scores["num_docs"] == len(docs)


def test_documents_that_change_between_the_two_readings_are_refused(tmp_path: Path) -> None:
    class Growing:
        passes = 0

        def __iter__(self):  # noqa: ANN204
            self.passes += 1
            return iter(DOCS + [["安阳"]] * (self.passes - 1))

    with pytest.raises(ValueError, match="changed between two readings"):
        lexical.write(tmp_path, IDS, Growing())


def test_loaded_scores_are_bm25s_scores(tmp_path: Path) -> None:
    """Answering sums the saved arrays itself: the same float32 scores as bm25s's own loader and scorer, a
    repeated query word counted twice."""
    import bm25s

    lexical.write(tmp_path / "bm25", IDS, DOCS)
    ours = LexicalIndex.load(tmp_path / "bm25", mmap=True)
    theirs = bm25s.BM25.load(str(tmp_path / "bm25"))
    for query in (["安阳"], ["改造", "改造", "安阳"], ["未知"], []):
        expected = theirs.get_scores_from_ids(theirs.get_tokens_ids(query)) if query != ["未知"] and query else None
        if expected is None:
            assert not ours.scores(query).any()
        else:
            assert np.array_equal(ours.scores(query), expected)


def test_a_damaged_vocabulary_is_a_value_error(tmp_path: Path) -> None:
    lexical.write(tmp_path / "bm25", IDS, DOCS)
    (tmp_path / "bm25" / "vocab.index.json").write_text('{"安阳": 0}', encoding="utf-8")
    try:
        LexicalIndex.load(tmp_path / "bm25")
    except ValueError as exc:
        assert "score columns" in str(exc)
    else:
        raise AssertionError("a vocabulary that does not match the score matrix was accepted")
