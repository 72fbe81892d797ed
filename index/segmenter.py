"""Chinese word segmentation: jieba's words, cut by jieba-rs (`rjieba`).

Python jieba spends 0.4 s unmarshalling its dictionary before the first word, on every CLI question and bot
start, and cuts ~5 times slower than its Rust port. jieba-rs ships the same dictionary and HMM, but draws two
lines differently: it keeps a run like "1-7", "s-300" or "20th.cpcnews.cn" in one word, and it treats
characters outside jieba's Han range (U+9FD6 on, extension A) as Han. Both are undone here, so the words are
python jieba's (`tests/test_segmenter.py` compares them on the corpora), and indexes built with either agree.
Python jieba stays for part-of-speech tagging (follow-ups, the gazetteer), loaded only where that is needed.
"""

from __future__ import annotations

import logging
import re

import jieba
import rjieba
from jieba import finalseg  # the HMM alone: 20 ms to import, no dictionary

# Python jieba announces its dictionary on stderr when part-of-speech tagging loads it.
jieba.setLogLevel(logging.WARNING)

# jieba/__init__.py: the runs it hands to its DAG, and what it yields whole between them.
_BLOCK = re.compile(r"([\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+)")
_SKIP = re.compile(r"(\r\n|\s)")


def _block_words(block: str) -> list[str]:
    """jieba's words of one run: jieba-rs finds the dictionary route (`hmm=False`), and the characters the
    route leaves single go to python jieba's HMM together, as `jieba.Tokenizer.__cut_DAG` does (jieba-rs's own
    HMM cuts "常在哪" as 常在/哪, python's as 常/在/哪)."""
    words: list[str] = []
    single = ""
    for word in rjieba.cut(block, False):
        # jieba-rs joins a run of letters and digits that the route left single (jieba's no-HMM mode does too)
        if len(word) == 1 or (word.isascii() and word.isalnum() and not rjieba.has_word(word)):
            single += word
            continue
        words += _unknown(single)
        single = ""
        words.append(word)
    return words + _unknown(single)


def _unknown(run: str) -> list[str]:
    """Characters the dictionary route left single: one is a word, a run the dictionary knows is its
    characters, any other run is cut by the HMM."""
    if len(run) <= 1:
        return [run] if run else []
    if rjieba.has_word(run):
        return list(run)
    return list(finalseg.cut(run))


def cut(text: str) -> list[str]:
    """Accurate-mode words with the HMM for unknown words, as `jieba.lcut(text)`."""
    words: list[str] = []
    for block in _BLOCK.split(text):
        if not block:
            continue
        if _BLOCK.fullmatch(block):
            words += _block_words(block)
        else:
            for piece in _SKIP.split(block):
                if _SKIP.fullmatch(piece):
                    words.append(piece)
                else:
                    words += piece  # one character at a time, as jieba yields them
    return words


def cut_for_search(text: str) -> list[str]:
    """Search-mode words, as `jieba.lcut_for_search(text)`: each word after the dictionary's two- and
    three-character words inside it."""
    words: list[str] = []
    for word in cut(text):
        if len(word) > 2:
            words += [word[i : i + 2] for i in range(len(word) - 1) if rjieba.has_word(word[i : i + 2])]
        if len(word) > 3:
            words += [word[i : i + 3] for i in range(len(word) - 2) if rjieba.has_word(word[i : i + 3])]
        words.append(word)
    return words
