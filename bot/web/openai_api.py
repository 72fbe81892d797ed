"""An OpenAI-compatible chat API over the same answers: `POST /v1/chat/completions` and `GET /v1/models`.

Any OpenAI client (the official SDKs, chat front ends that take a base URL and a key) can talk to Wenda as if it
were a model called "wenda". The last user message is the question and the user messages before it are the
conversation, so follow-ups ("那襄阳呢？") work as in `wenda chat`; system and assistant messages are read past.
The reply is the extractive answer (or the notice that the corpus does not hold one) followed by the numbered
cited passages, in Markdown; the response also carries `citations`, the `results` objects of `/v1/ask`, and
`answerable` and `confidence`. `stream: true` sends the same reply as server-sent events in OpenAI's chunk
format. Sampling parameters (temperature, max_tokens, …) mean nothing to an extractive answer and are ignored;
`n` above 1 is refused. Errors keep the project's body ({"error": {"message", "field", "type"}}), which OpenAI
clients raise as an `APIStatusError` carrying the message.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from wenda.index.config import DEFAULT_TOP_K
from wenda.index.knowledge import KnowledgeBase
from wenda.retrieval.answer import Answer
from wenda.retrieval.results import Response, Result

from ..render import NO_ANSWER, STALE, UNDERSTOOD, citation_parts, highlight_link, json_line, terminal_safe
from .service import ApiError, Client, MetadataCondition, service_of

MODEL = "wenda"
NOT_FOUND = "语料中没有找到这个问题的答案。"  # no passage at all to offer (an empty index)
# Markdown that corpus text could trigger by accident: emphasis, code, links, HTML, strikethrough.
MARKDOWN = re.compile(r"([\\`*_\[\]<>~])")
# A rough token count for `usage`: each CJK character, each run of letters or digits, each other symbol.
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+|[^\w\s]")
STARTED = int(time.time())

router = APIRouter(tags=["OpenAI-compatible"])


class ContentPart(BaseModel):
    """One part of a message's content; only "text" parts are read (images and audio are ignored)."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # name, tool_calls, …: accepted, not used
    role: str
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type == "text" and part.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; fields not named here (temperature, max_tokens, user, …) are ignored,
    the ones named must have their type ("stream": "yes" is refused, not read as true)."""

    model_config = ConfigDict(strict=True)

    model: str = Field(MODEL, description='any name is answered by Wenda ("wenda" is the one listed)')
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation; the last user message is asked")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, description="choices to generate: only 1")
    # Wenda's own: a metadata filter in Dify's shape (the openai client sends it with `extra_body`)
    filter: MetadataCondition | None = Field(None, description="only passages whose citation meets this")


def conversation(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    """(question, earlier questions oldest first): the last user message and the user messages before it."""
    asked = [message for message in messages if message.role == "user"]
    if not asked:
        raise ApiError(400, "messages: no message with role 'user' to answer", "messages")
    question = asked[-1].text
    if not question.strip():
        raise ApiError(400, "messages: the last user message has no text", "messages")
    return question, [text for text in (message.text for message in asked[:-1]) if text.strip()]


def markdown(text: str) -> str:
    """Corpus text as literal Markdown: controls and bidi overrides made visible, Markdown syntax escaped."""
    return MARKDOWN.sub(r"\\\1", terminal_safe(text))


def code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{terminal_safe(text)}{pad}{fence}"


def citation_markdown(result: Result) -> str:
    """《title》 · section · 第3页 · `file:p3:12` (the parts `wenda ask` prints), the source page linked."""
    record = result.record
    *words, where = citation_parts(record)
    line = " · ".join([*(markdown(word) for word in words), code(where)])
    if record.url and record.url.startswith(("https://", "http://")):
        link = highlight_link(record.url, record.text)
        if not re.search(r"[\s<>]", link):
            line += f" · [原文](<{link}>)"
    return line + (f"\n\n{markdown(STALE)}" if result.stale else "")


def quote(text: str) -> str:
    return "\n".join(f"> {markdown(line)}" if line.strip() else ">" for line in text.splitlines() or [""])


def answer_markdown(answer: Answer) -> str:
    """The answer sentence with the part the question asks for (a number, a date, a name) in bold."""
    text = answer.text
    if answer.span is None:
        return markdown(text)
    start, end = answer.span[0] - answer.start, answer.span[1] - answer.start
    if not 0 <= start < end <= len(text):
        return markdown(text)
    return f"{markdown(text[:start])}**{markdown(text[start:end])}**{markdown(text[end:])}"


def reply(response: Response) -> str:
    """The assistant message: how a follow-up was understood, the answer or the refusal, then the sources."""
    blocks = [f"_{markdown(UNDERSTOOD + response.resolved)}_"] if response.resolved else []
    if response.answerable and response.answer is not None:
        blocks.append(answer_markdown(response.answer))
    else:
        blocks.append(NO_ANSWER if response.results else NOT_FOUND)
    for number, result in enumerate(response.results, start=1):
        blocks.append(f"[{number}] {citation_markdown(result)}\n\n{quote(result.record.text)}")
    return "\n\n".join(blocks)


def tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def usage(question: str, history: list[str], content: str) -> dict:
    asked, answered = tokens(question) + sum(tokens(turn) for turn in history), tokens(content)
    return {"prompt_tokens": asked, "completion_tokens": answered, "total_tokens": asked + answered}


def extras(response: Response) -> dict:
    """What Wenda adds to OpenAI's objects: the cited passages as in `/v1/ask`, and whether it answered."""
    data = response.to_dict()
    return {"citations": data["results"], "answerable": data["answerable"], "confidence": data["confidence"]}


def pieces(content: str) -> Iterator[str]:
    """The reply in stream-sized pieces: block by block (answer, each source, each quote), each with the blank
    line after it."""
    yield from re.findall(r".+?(?:\n\n|$)", content, re.DOTALL)


def events(head: dict, response: Response, content: str, counted: dict | None) -> Iterator[str]:
    """Server-sent events in OpenAI's format: the role (with the citations), the text, the stop, [DONE]."""

    def chunk(choices: list[dict], **more: object) -> str:
        body = {**head, "object": "chat.completion.chunk", "choices": choices, **more}
        if counted is not None:
            body.setdefault("usage", None)
        return f"data: {json_line(body)}\n\n"

    def choice(delta: dict, finish: str | None = None) -> list[dict]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    yield chunk(choice({"role": "assistant", "content": ""}), **extras(response))
    for piece in pieces(content):
        yield chunk(choice({"content": piece}))
    yield chunk(choice({}, "stop"))
    if counted is not None:  # stream_options.include_usage: one more chunk, with no choices
        yield chunk([], usage=counted)
    yield "data: [DONE]\n\n"


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat: the answer with numbered sources")
async def chat_completions(body: ChatRequest, request: Request, client: Client) -> object:
    if body.n is not None and body.n != 1:
        raise ApiError(400, f"n: only one choice is generated (n=1), got {body.n}", "n")
    question, history = conversation(body.messages)
    service = service_of(request)
    # with knowledge bases configured, `model` names the one to answer from; without, any name is Wenda
    kb = service.knowledge(body.model, "model", request) if service.bases else None
    try:
        where = body.filter.predicate() if body.filter else None
        response = await service.ask(question, DEFAULT_TOP_K, history, "openai", kb, where)
    except ApiError as exc:
        if exc.field == "question":  # the question is a message here
            raise ApiError(exc.status, exc.message, "messages", exc.kind) from exc
        raise
    content = reply(response)
    counted = usage(question, history, content)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model if kb else MODEL}
    if body.stream:
        include = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            events(head, response, content, counted if include else None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    message = {"role": "assistant", "content": content, "refusal": None}
    return {
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": counted,
        "system_fingerprint": None,
        **extras(response),
    }


def model_card(name: str = MODEL, base: KnowledgeBase | None = None) -> dict:
    card = {"id": name, "object": "model", "created": STARTED, "owned_by": "wenda"}
    if base is not None and (base.title or base.description):
        card["description"] = " — ".join(part for part in (base.title, base.description) if part)
    return card


@router.get("/v1/models", summary="OpenAI-compatible model list: one model per knowledge base (or wenda)")
async def models(request: Request, client: Client) -> dict:
    service = service_of(request)
    cards = (
        [model_card(name, service.bases[name]) for name in service.visible(request)]
        if service.bases
        else [model_card()]
    )
    return {"object": "list", "data": cards}


@router.get("/v1/models/{model}", summary="OpenAI-compatible model details")
async def model(model: str, request: Request, client: Client) -> dict:
    service = service_of(request)
    if service.bases:
        visible = service.visible(request)
        if model not in visible:
            raise ApiError(404, f"no model {model!r}: this server has {', '.join(visible)}", "model", "not_found")
        return model_card(model, service.bases[model])
    if model != MODEL:
        raise ApiError(404, f"no model {model!r}: this server has one, {MODEL!r}", "model", "not_found")
    return model_card()
