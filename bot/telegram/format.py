"""Telegram HTML for answers: bold answer first, numbered cited passages in expandable quotes.

Every piece of corpus or user text goes through `html.escape`; tags are only added around text that
was already cut, so trimming can never break a tag. Messages stay within Telegram's 4096 characters.
"""

from __future__ import annotations

from html import escape

from wenda.index.chunking import SENTENCE_END
from wenda.retrieval.results import Response, Result

from ..render import NO_ANSWER, STALE, UNDERSTOOD, citation_parts, highlight_link

TELEGRAM_LIMIT = 4096
ELLIPSIS = "…"


def telegram_length(text: str) -> int:
    """Telegram counts UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def trim(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last sentence end if there is one."""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in SENTENCE_END.finditer(text, 0, limit)]
    return text[: ends[-1] if ends else limit] + ELLIPSIS


def citation(result: Result) -> str:
    """《title》 · section · 第3页 · file:p3:12, the file linked to its web page (when it came from one) with a
    text fragment that makes the browser highlight the passage; a warning line when the file changed."""
    record = result.record
    text = escape(" · ".join(citation_parts(record)))
    if record.url and record.url.startswith(("https://", "http://")):
        text = f'{text} · <a href="{escape(highlight_link(record.url, record.text))}">原文</a>'
    return text + (f"\n<i>{escape(STALE)}</i>" if result.stale else "")


def passage_html(result: Result, response: Response, limit: int) -> str:
    """The passage, trimmed to `limit` characters, with the answer underlined when it is in it."""
    record = result.record
    text = trim(record.text, limit)
    answer = response.answer
    kept = len(text) - (len(ELLIPSIS) if text.endswith(ELLIPSIS) and text != record.text else 0)
    if answer is not None and answer.record.id == record.id:
        start, end = answer.start - record.start, answer.end - record.start
        if 0 <= start < end <= kept:
            return f"{escape(text[:start])}<u><b>{escape(text[start:end])}</b></u>{escape(text[end:])}"
    return escape(text)


def answer_html(response: Response, results: list[Result], first_number: int, footer: str = "") -> str:
    """A whole reply: answer (or the no-answer notice), then the passages numbered from `first_number`."""
    sure = f"置信度 {response.confidence:.0%}"
    if response.answerable and response.answer is not None:
        head = f"<b>{escape(response.answer.text)}</b>\n<i>{sure}</i>"
    else:
        head = f"{escape(NO_ANSWER)}\n<i>{sure}</i>"
    if response.resolved:  # a follow-up: show how it was understood, so a wrong guess can be re-asked in full
        head = f"<i>{escape(UNDERSTOOD)}{escape(response.resolved)}</i>\n{head}"
    limit = 1200
    while True:
        blocks = [head]
        for number, result in enumerate(results, start=first_number):
            quote = passage_html(result, response, limit)
            blocks.append(f"[{number}] {citation(result)}\n<blockquote expandable>{quote}</blockquote>")
        if footer:
            blocks.append(f"<i>{escape(footer)}</i>")
        html = "\n\n".join(blocks)
        if telegram_length(html) <= TELEGRAM_LIMIT or limit <= 40:
            return html
        limit = int(limit * 0.8)


def paragraph_html(result: Result) -> str:
    """The full paragraph of a passage with its citation, trimmed to fit one message."""
    head = citation(result)
    budget = TELEGRAM_LIMIT - telegram_length(head) - 40
    text = result.record.paragraph_text
    while telegram_length(escape(trim(text, budget))) > budget:
        budget = int(budget * 0.9)
    return f"{head}\n\n{escape(trim(text, budget))}"
