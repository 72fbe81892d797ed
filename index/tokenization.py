"""Text normalization and Chinese word segmentation for the lexical (BM25) path."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc
import stopwordsiso

from .segmenter import cut_for_search


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(stopwordsiso.stopwords(["zh", "en"]))


def to_simplified(text: str) -> str:
    """NFKC (full-width to half-width) and traditional to simplified Chinese; what the dense model sees."""
    return _converter().convert(unicodedata.normalize("NFKC", text))


def normalize(text: str) -> str:
    """`to_simplified`, lower-cased: what the lexical path compares."""
    return to_simplified(text).lower()


def _is_word(token: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in token)


@lru_cache(maxsize=1)
def _english():  # noqa: ANN202 - snowballstemmer's class
    import snowballstemmer  # at the first English word: its 30-odd languages cost 12 ms to import

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """An English word's Snowball (Porter 2) stem, so that "leaders" finds "Leader" and "listed" "list"; any
    other token as it is. Chinese has no inflection to undo."""
    if len(word) < 4 or not word.isascii() or not word.isalpha():
        return word
    return _english().stemWord(word)


def tokenize(text: str) -> list[str]:
    """Search-mode jieba words of the normalized text, without stopwords and punctuation; English words stemmed."""
    stopwords = _stopwords()
    return [stem(t) for t in cut_for_search(normalize(text)) if _is_word(t) and t not in stopwords]
