"""Question clean-up and validation shared by every front end."""

from __future__ import annotations

import unicodedata

from wenda.index.config import MAX_QUERY_CHARS
from wenda.index.errors import QueryError


def clean_query(text: str) -> str:
    """Drop control characters and surrounding space; refuse empty or over-long questions."""
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text).strip()
    if not cleaned:
        raise QueryError("empty question: type a question about the corpus")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QueryError(f"question too long ({len(cleaned)} characters; the limit is {MAX_QUERY_CHARS})")
    return cleaned
