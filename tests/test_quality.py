"""Regression on ../shared/eval/dev.jsonl: the pipeline keeps the quality targets of docs/quality.md."""

import unicodedata

import pytest

from retrieval.evaluation import evaluate, summarize
from retrieval.retriever import Retriever
from tests.conftest import dev_questions


@pytest.fixture(scope="module")
def dev_summary(retriever: Retriever) -> dict:
    return summarize(evaluate(retriever, dev_questions()))


def test_dev_recall_targets(dev_summary: dict) -> None:
    assert dev_summary["all"]["recall@1"] >= 0.95
    assert dev_summary["all"]["recall@5"] == 1.0


def test_dev_abstention_targets(dev_summary: dict) -> None:
    assert dev_summary["unanswerable"]["missed_abstention"] == 0.0
    assert dev_summary["all"]["false_abstention"] * 30 <= 1  # at most one of the 30 answerable questions


def test_extractive_answer_holds_the_fact(dev_summary: dict) -> None:
    assert dev_summary["all"]["answer_hit"] >= 0.85


def test_answer_is_a_cited_span_of_a_result(retriever: Retriever) -> None:
    response = retriever.ask("運城建成了多少個嵌入式養老機構？", 5)
    assert response.answerable and response.answer is not None
    answer = response.answer
    assert "52个" in answer.text
    assert answer.record.paragraph_text[answer.start : answer.end] == answer.text
    assert answer.record.id in {r.record.id for r in response.results}
    data = response.to_dict()["answer"]
    assert data["citation"]["start"] == answer.start and data["citation"]["source"] == "004_253b461cd30454f2.txt"


def test_unanswerable_has_no_answer_but_nearest_passages(retriever: Retriever) -> None:
    response = retriever.ask("2024年巴黎奥运会中国队获得了多少枚金牌？", 3)
    assert not response.answerable and response.answer is None and len(response.results) == 3


def test_traditional_question_finds_simplified_passage(retriever: Retriever) -> None:
    best = retriever.ask("許昌收集的企業問題辦結率是多少？", 1).results[0]
    assert "办结率达94.7%" in unicodedata.normalize("NFKC", best.record.text)


def test_windows_of_one_paragraph_appear_once(retriever: Retriever) -> None:
    results = retriever.ask("运城市改革", 20).results
    keys = [(r.record.source, r.record.paragraph) for r in results]
    assert len(keys) == len(set(keys))
