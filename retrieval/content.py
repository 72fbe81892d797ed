"""Does a question hold anything to search for? Punctuation, emoji, markup and filler words alone do not."""

from __future__ import annotations

import html
import re

from wenda.index.tokenization import tokenize

# Markup is not a question: script/style elements go whole, other tags leave their text.
SCRIPT = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.I | re.S)
TAG = re.compile(r"</?[a-z][^>]*>|<!--.*?-->|```|\[\]\(\)", re.I | re.S)
# Chat filler that stopwords-iso does not cover: greetings and "please tell me" phrases carry no topic.
FILLER = frozenset(
    "你好 您好 嗨 哈喽 喂 嘿 哦 噢 请问 一下 问问 问 想 知道 告诉 我 你 帮 帮忙 谢谢 什么 怎么 怎么样 吗 呢 啊 吧 "
    "哈 哈哈 嗯 好 好的 在 在吗 hello hi hey please thanks thank tell me know what".split()
)


def strip_markup(question: str) -> str:
    """The question without HTML elements, entities (&nbsp;) and Markdown link/code furniture."""
    return html.unescape(TAG.sub(" ", SCRIPT.sub(" ", question)))


def content_tokens(question: str) -> list[str]:
    """Search tokens of a question that carry a topic (empty: nothing to search for)."""
    return [t for t in tokenize(strip_markup(question)) if t not in FILLER]
