"""retrieval.content and index.furniture: questions with nothing to search, lines that are not content."""

import json
from pathlib import Path

import pytest
from wenda.index.furniture import is_furniture
from wenda.retrieval.content import content_tokens
from wenda.retrieval.retriever import Retriever

CONTENTLESS = Path(__file__).resolve().parent.parent / "bench" / "questions" / "contentless.jsonl"


def contentless() -> list[str]:
    return [json.loads(line)["q"] for line in CONTENTLESS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("question", ["？？？", "🐼🐼🐼", "!!!???...", "<script>alert(1)</script>", "请问一下", "你好"])
def test_no_searchable_content(question: str) -> None:
    assert content_tokens(question) == []


@pytest.mark.parametrize("question", ["安阳出租车", "123", "What is Anyang's GDP?", "<b>许昌</b>营业执照"])
def test_content_is_kept(question: str) -> None:
    assert content_tokens(question)


def test_contentless_questions_are_never_answered(retriever: Retriever) -> None:
    for question in contentless():
        response = retriever.ask(question, 3)
        assert not response.answerable and response.answer is None and response.results == [], question
        assert response.error and "没有可检索的词" in response.error


@pytest.mark.parametrize(
    "line",
    [
        "来源:襄阳日报 / 编辑:邓植元",
        "责任编辑:翟竞 / 编审:任丹",
        "□本报记者 牛思明",
        "第03版:特别报道",
        "本报记者 冯子建",
    ],
)
def test_credit_lines_are_furniture(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    ["记者从市政府获悉，全市完成投资50亿元。", "据悉,今年,我市计划实施城镇老旧小区改造项目290个", "编辑部的故事"],
)
def test_body_text_is_not_furniture(line: str) -> None:
    assert not is_furniture(line)


def test_a_credit_line_is_never_the_answer(retriever: Retriever) -> None:
    for question in ("襄阳日报", "襄阳营商环境怎么样？", "那襄阳呢？"):
        response = retriever.ask(question, 5)
        assert response.results and not is_furniture(response.results[0].record.text), question
        assert response.answer is None or not is_furniture(response.answer.record.text)
