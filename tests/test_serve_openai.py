"""The OpenAI-compatible API of `wenda serve`, through the official `openai` client against the real server
process: a plain and a streamed answer with numbered sources and citations, a follow-up carried by the
message history, a refusal, keys, and requests it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest
from conftest import serving_copy
from wenda.bot.render import NO_ANSWER, STALE
from wenda.bot.web.openai_api import reply
from wenda.index.store import ChunkRecord
from wenda.retrieval.results import Response, Result

KEY = "sk-wenda-test"
QUESTION = "运城市全年重点谋划部署了多少项重点改革试点工作？"
TITLE = "《改革风帆劲 奋楫新征程——运城市全面深化改革综述》"


@pytest.fixture(scope="module")
def server(small_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on a copy of the small index that wants a key."""
    root = tmp_path_factory.mktemp("serve-openai")
    with serving_copy(small_index, root, WENDA_API_KEYS=KEY) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def ask(client: openai.OpenAI, *messages: dict, **options: object):  # noqa: ANN201 - the SDK's own types
    return client.chat.completions.create(model="wenda", messages=list(messages), **options)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_answer_with_numbered_sources_and_citations(client: openai.OpenAI, server: str) -> None:
    completion = ask(
        client,
        {"role": "system", "content": "You are a helpful assistant."},
        user(QUESTION),
        temperature=0.2,
        max_tokens=64,
        user="someone",
    )
    choice = completion.choices[0]
    text = choice.message.content
    assert choice.finish_reason == "stop" and choice.message.role == "assistant" and completion.model == "wenda"
    assert text.startswith("全年重点谋划部署了**10项**重点改革试点工作。\n\n")
    assert f"\n[1] {TITLE} · 重点领域 纵深推进 · `004_253b461cd30454f2.txt:10`\n\n> 试点改革先行先试。" in text
    assert "\n[5] " in text and "\n[6] " not in text
    citations = completion.model_extra["citations"]
    native = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, headers={"Authorization": f"Bearer {KEY}"})
    assert citations == native.json()["results"] and len(citations) == 5
    assert completion.model_extra["answerable"] is True and completion.usage.total_tokens > 0


def test_streamed_answer_is_the_same_reply_in_chunks(client: openai.OpenAI, server: str) -> None:
    whole = ask(client, user(QUESTION)).choices[0].message.content
    chunks = list(ask(client, user(QUESTION), stream=True, stream_options={"include_usage": True}))
    first, *middle, stop, counted = chunks
    assert first.object == "chat.completion.chunk" and first.choices[0].delta.role == "assistant"
    assert first.model_extra["citations"][0]["citation"]["locator"] == "10"
    assert len(middle) > 2 and "".join(chunk.choices[0].delta.content for chunk in middle) == whole
    assert stop.choices[0].finish_reason == "stop" and counted.choices == [] and counted.usage.total_tokens > 0
    body = {"model": "wenda", "messages": [user(QUESTION)], "stream": True}
    raw = httpx.post(f"{server}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.endswith("data: [DONE]\n\n") and '"usage"' not in raw.text  # usage only when asked for


def test_earlier_user_messages_make_a_follow_up(client: openai.OpenAI) -> None:
    alone = ask(client, user("那市长是谁？")).choices[0].message.content
    followed = ask(
        client,
        {"role": "system", "content": "回答要简短"},
        user("运城市委书记是谁？"),
        {"role": "assistant", "content": "丁小强"},
        {"role": "user", "content": [{"type": "text", "text": "那市长是谁？"}]},  # content as parts
    )
    text = followed.choices[0].message.content
    assert text.startswith("_按上文理解为：运城") and "按上文理解为" not in alone


def test_refusal_is_a_normal_reply_with_passages_for_reference(client: openai.OpenAI) -> None:
    completion = ask(client, user("火星上有多少个湖泊？"))
    text = completion.choices[0].message.content
    assert text.startswith(NO_ANSWER) and "仅供参考" in text and "\n[1] 《" in text
    assert completion.choices[0].finish_reason == "stop" and completion.model_extra["answerable"] is False


def test_keys_are_checked(server: str, client: openai.OpenAI) -> None:
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        ask(wrong, user(QUESTION))
    assert raised.value.status_code == 401 and "the API key is not valid" in str(raised.value)
    assert raised.value.body["field"] == "authorization"
    missing = httpx.post(f"{server}/v1/chat/completions", json={"model": "wenda", "messages": [user(QUESTION)]})
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
    assert [model.id for model in client.models.list()] == ["wenda"] and client.models.retrieve("wenda").id == "wenda"
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


@pytest.mark.parametrize(
    "messages, options, error, field",
    [
        ([user(QUESTION)], {"n": 2}, openai.BadRequestError, "n"),
        ([{"role": "system", "content": "你好"}], {}, openai.BadRequestError, "messages"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            {},
            openai.BadRequestError,
            "messages",
        ),
        ([], {}, openai.UnprocessableEntityError, "messages"),
        ([user("？？？")], {}, openai.UnprocessableEntityError, "messages"),
    ],
)
def test_bad_requests_raise_a_clear_error(
    client: openai.OpenAI, messages: list, options: dict, error: type, field: str
) -> None:
    with pytest.raises(error) as raised:
        ask(client, *messages, **options)
    assert raised.value.body["field"] == field and raised.value.body["message"] in str(raised.value)


def test_corpus_text_stays_literal_markdown() -> None:
    """Markdown or HTML in a passage is shown as text, the page is linked and a changed file is flagged."""
    text = "有*星号*和<b>标签</b>，[链接](x)。"
    record = ChunkRecord(1, "网页_1.html", 4, 1, None, "标*题", None, None, None, 0, len(text), text)
    record = replace(record, locator_json='{"page": 2}', url="https://example.cn/a", format="html")
    content = reply(Response("q", [Result(1, 0.5, record, stale=True)]))
    assert content.startswith(NO_ANSWER)
    assert "[1] 《标\\*题》 · 第2页 · `网页_1.html:p2:4` · [原文](<https://example.cn/a#:~:text=" in content
    assert f"\n\n{STALE}\n\n> 有\\*星号\\*和\\<b\\>标签\\</b\\>，\\[链接\\](x)。" in content
