"""retrieval: the right passage for dev-set questions, query validation and hot reload."""

import unicodedata
from pathlib import Path

import pytest
from wenda.index.config import MAX_QUERY_CHARS, Settings
from wenda.index.errors import QueryError
from wenda.retrieval.query import clean_query
from wenda.retrieval.retriever import Retriever

from tests.conftest import build, dev_questions


def answers(result_text: str, evidence: list[str]) -> bool:
    text = unicodedata.normalize("NFKC", result_text)
    return any(unicodedata.normalize("NFKC", e) in text for e in evidence)


@pytest.mark.parametrize("question", [q for q in dev_questions() if q["type"] == "fact"][::3], ids=lambda q: q["id"])
def test_fact_questions_find_their_passage_first(retriever: Retriever, question: dict) -> None:
    best = retriever.ask(question["q"], 5).results[0]
    assert answers(best.record.text, question["ev"]), best.record.text[:80]


def test_results_are_ranked_and_cited(retriever: Retriever) -> None:
    response = retriever.ask("清丰县2022年机关负责人出庭率", 5)
    scores = [r.score for r in response.results]
    assert [r.rank for r in response.results] == [1, 2, 3, 4, 5]
    assert scores == sorted(scores, reverse=True)
    assert response.results[0].record.source == "003_71e5a5211310dfa3.txt"


@pytest.mark.parametrize("raw", ["", "   \n\t", "\x00\x1b", "问" * (MAX_QUERY_CHARS + 1)])
def test_bad_questions_get_an_error_not_an_exception(retriever: Retriever, raw: str) -> None:
    response = retriever.ask(raw, 5)
    assert response.error and response.results == []


def test_clean_query_strips_control_characters() -> None:
    assert clean_query(" 安阳\x07出租车\n") == "安阳 出租车"
    with pytest.raises(QueryError):
        clean_query("\x00")


def test_retriever_switches_to_a_new_generation(small_corpus: Path, tmp_path: Path, embedder) -> None:
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, embedder)
    retriever = Retriever(Settings(corpus=small_corpus, index_dir=index_dir), embedder)
    (small_corpus / "new.txt").write_text("图书馆\n运城市新建的盐湖图书馆藏书120万册。\n", encoding="utf-8")
    build(small_corpus, index_dir, embedder)
    best = retriever.ask("盐湖图书馆藏书多少册？", 1).results[0]
    assert best.record.source == "new.txt" and "120万册" in best.record.text
