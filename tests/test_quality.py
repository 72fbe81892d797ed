"""Regression on the seed corpus: dev.jsonl and the question sets in bench/questions keep the quality
targets of docs/quality.md (the slow corpora are measured by bench/quality.py)."""

import json
import unicodedata
from pathlib import Path

import pytest
from wenda.index.config import Settings
from wenda.index.errors import WendaError
from wenda.retrieval.evaluation import evaluate, summarize
from wenda.retrieval.retriever import Retriever

from tests.conftest import dev_questions

QUESTIONS = Path(__file__).resolve().parent.parent / "bench" / "questions"


def question_set(name: str) -> list[dict]:
    lines = (QUESTIONS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


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


def test_everyday_wording_is_found_and_rarely_refused(retriever: Retriever) -> None:
    """A regression guard at today's level, not the issue's target (no refusal), which is missed: the shipped
    models saw these questions in training (held-out figures in docs/quality.md)."""
    summary = summarize(evaluate(retriever, question_set("paraphrase")))["all"]
    assert summary["recall@1"] >= 0.85 and summary["false_abstention"] <= 0.35


def test_english_questions(retriever: Retriever) -> None:
    summary = summarize(evaluate(retriever, question_set("english")))["all"]
    assert summary["recall@1"] >= 0.80 and summary["recall@5"] >= 0.95


def test_out_of_domain_questions_are_flagged(retriever: Retriever) -> None:
    """A regression guard at today's level on the raw articles: 7 of 57 answered, all near-topic ("许昌市2020年
    的地区生产总值是多少？"); the threshold was chosen on held-out figures, where 4 of 57 are (docs/quality.md)."""
    summary = summarize(evaluate(retriever, question_set("ood")))["all"]
    assert summary["missed_abstention"] <= 7 / 57 + 1e-9


def test_confidence_is_a_probability_in_every_response(retriever: Retriever) -> None:
    for question in ("安阳市区营运出租车中有多少台纯电动车？", "红烧肉怎么做才好吃？", "How many taxis in Anyang?"):
        data = retriever.ask(question, 3).to_dict()
        assert 0.0 <= data["confidence"] <= 1.0
        assert data["answerable"] == (data["confidence"] >= retriever.settings.min_confidence)


def test_owners_can_move_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WENDA_MIN_CONFIDENCE", "0.8")
    assert Settings.from_env().min_confidence == 0.8
    monkeypatch.setenv("WENDA_MIN_CONFIDENCE", "high")
    with pytest.raises(WendaError, match="WENDA_MIN_CONFIDENCE"):
        Settings.from_env()


def test_answer_is_a_cited_span_of_a_result(retriever: Retriever) -> None:
    response = retriever.ask("運城建成了多少個嵌入式養老機構？", 5)
    assert response.answerable and response.answer is not None
    answer = response.answer
    assert "52个" in answer.text
    assert answer.record.paragraph_text[answer.start : answer.end] == answer.text
    assert answer.record.id in {r.record.id for r in response.results}
    data = response.to_dict()["answer"]
    assert data["citation"]["start"] == answer.start and data["citation"]["source"] == "004_253b461cd30454f2.txt"


@pytest.mark.parametrize(
    ("question", "span"),
    [
        ("安阳市区营运出租车中有多少台纯电动车？", "856台"),
        ("运城建成了多少个嵌入式养老机构？", "52个"),
    ],
)
def test_the_answer_span_fits_the_question_type(retriever: Retriever, question: str, span: str) -> None:
    answer = retriever.ask(question, 5).to_dict()["answer"]
    assert span in answer["span"]["text"]
    paragraph = retriever.ask(question, 5).answer.record.paragraph_text
    assert paragraph[answer["span"]["start"] : answer["span"]["end"]] == answer["span"]["text"]


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
