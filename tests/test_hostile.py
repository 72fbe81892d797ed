"""Hostile questions: the query path, the CLI and the Telegram HTML never break on any input."""

import json
import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wenda.bot.telegram.format import TELEGRAM_LIMIT, answer_html, paragraph_html, telegram_length
from wenda.index.config import Settings
from wenda.index.store import ChunkRecord
from wenda.retrieval.answer import Answer
from wenda.retrieval.results import Response, Result
from wenda.retrieval.retriever import Retriever

from tests.conftest import run_wenda

HOSTILE = [
    "",
    "   \t ",
    "问" * 10_001,
    "\x00\x1b[31m红色\x1b[0m\x07",
    "<b>粗体</b><script>alert(1)</script>&amp;",
    "**安阳** _出租车_ `code` [link](http://x)",
    "'; DROP TABLE chunks; --",
    "🚕🚕 安阳有多少台纯电动出租车？👍🏽",
    "Anyang 出租车 таксі タクシー 택시",
    "\u202e\u200b\ufeff安阳",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.text(max_size=300))
def test_any_text_gets_a_response_not_an_exception(retriever: Retriever, question: str) -> None:
    response = retriever.ask(question, 3)
    json.dumps(response.to_dict(), ensure_ascii=False)
    assert bool(response.error) != bool(response.results)
    if response.answer is not None:
        answer = response.answer
        assert answer.record.paragraph_text[answer.start : answer.end] == answer.text


def test_hostile_questions_in_batch_mode_get_one_line_each(seed_settings: Settings) -> None:
    env = {"WENDA_CORPUS": str(seed_settings.corpus), "WENDA_INDEX_DIR": str(seed_settings.index_dir)}
    stdin = "\n".join(q.replace("\n", " ") for q in HOSTILE).encode("utf-8") + b"\n"
    done = run_wenda("ask", "--json", "-k", "2", stdin=stdin, env=env)
    lines = done.stdout.decode().splitlines()
    failed = any("error" in json.loads(line) for line in lines)
    assert done.returncode == (1 if failed else 0) and b"Traceback" not in done.stderr
    assert len(lines) == len(HOSTILE)
    for line in lines:
        json.loads(line)


class TagBalance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        assert tag in {"b", "u", "i", "blockquote", "code"}, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag


def record(text: str, title: str = "<i>标题</i>") -> ChunkRecord:
    return ChunkRecord(1, "a&b.txt", 3, 2, "<节>", title, None, None, None, 0, len(text), text)


@settings(max_examples=80, deadline=None)
@given(text=st.text(min_size=1, max_size=3000), cut=st.integers(min_value=0, max_value=3000))
def test_telegram_html_is_escaped_balanced_and_short(text: str, cut: int) -> None:
    rec = record(text)
    start = min(cut, len(text) - 1)
    answer = Answer(rec, start, min(len(text), start + 40))
    results = [Result(i, 1.0, rec) for i in range(1, 4)]
    for answerable in (True, False):
        response = Response("q", results, answer if answerable else None, answerable)
        for html in (answer_html(response, results, 1, "第 1/2 页"), paragraph_html(results[0])):
            assert telegram_length(html) <= TELEGRAM_LIMIT
            parser = TagBalance()
            parser.feed(re.sub(r"<blockquote expandable>", "<blockquote>", html))
            parser.close()
            assert parser.stack == []
