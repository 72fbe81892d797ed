"""Metadata filters applied inside the search: the chunks whose citation meets a condition are the only ones
the dense and lexical searches may return, so `k` matching passages come back whenever that many exist, and
the ranker and the confidence judge only those (a filter applied after ranking returned fewer, or none, when
the matches ranked low).

A condition is Dify's `metadata_condition` shape, which the native API (`"filter"`) and the OpenAI route (an
extra body field, `filter`) take too: {"logical_operator": "and" | "or", "conditions": [{"name": FIELD or
[FIELDS], "comparison_operator": OP, "value": …}]}, with Dify's operators (contains, not contains, start with,
end with, is, is not, in, not in, empty, not empty, =, ≠, >, <, ≥, ≤, before, after). Fields are the
citation's: source, title, section, place, publisher, date, url, format, page, chapter, line, …"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from wenda.index.store import Snapshot

from .results import citation

Predicate = Callable[[dict], bool]
BATCH = 5000  # chunk records read at a time (SQLite bounds the parameters of one statement)

_metadata: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def chunk_metadata(snapshot: Snapshot) -> list[tuple[int, dict]]:
    """(chunk id, citation fields) of every chunk of a snapshot, read once per snapshot."""
    with _lock:
        known = _metadata.get(snapshot)
        if known is None:
            ids = [int(i) for i in snapshot.lexical.ids]
            known = []
            for start in range(0, len(ids), BATCH):
                records = snapshot.records(ids[start : start + BATCH])
                known += [(i, citation(records[i], False)) for i in ids[start : start + BATCH] if i in records]
            _metadata[snapshot] = known
        return known


def allowed_ids(snapshot: Snapshot, predicate: Predicate) -> np.ndarray:
    """The ids of the chunks whose citation meets `predicate`, sorted."""
    return np.array(sorted(i for i, fields in chunk_metadata(snapshot) if predicate(fields)), dtype=np.int64)


def number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def moment(value: object) -> float | None:
    """A date as a timestamp: a number is one already, a string is read as an ISO date or date-time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip()).timestamp()
        except ValueError:
            return None
    return None


def holds(field: object, operator: str, value: object) -> bool:
    """Whether one metadata value meets one comparison operator; a list (tags) meets it when one of its
    items does ("contains": an item holding the value), and is empty when it has none."""
    if operator in ("empty", "not empty"):
        return (field is None or field == "" or field == []) == (operator == "empty")
    if operator in ("not contains", "is not", "not in", "≠"):
        return not holds(field, {"not contains": "contains", "is not": "is", "not in": "in", "≠": "="}[operator], value)
    if isinstance(field, list):
        return any(holds(item, operator, value) for item in field)
    if field is None:
        return False
    text = str(field)
    if operator == "contains":
        return str(value) in text
    if operator == "start with":
        return text.startswith(str(value))
    if operator == "end with":
        return text.endswith(str(value))
    if operator == "is":
        return text == str(value) or (number(field) is not None and number(field) == number(value))
    if operator == "in":
        return text in ([str(v) for v in value] if isinstance(value, list) else [str(value)])
    if operator in ("before", "after"):
        when, then = moment(field), moment(value)
        return when is not None and then is not None and (when < then if operator == "before" else when > then)
    left, right = number(field), number(value)
    if left is None or right is None:
        return False
    return {"=": left == right, ">": left > right, "<": left < right, "≥": left >= right, "≤": left <= right}[operator]


def predicate(logical_operator: str | None, conditions: Sequence[tuple[str | list[str], str, object]]) -> Predicate:
    """A test of a chunk's citation fields: every condition (or, with "or", any) holds; a condition naming
    several fields holds when any of them does."""

    def one(fields: dict, names: str | list[str], operator: str, value: object) -> bool:
        return any(holds(fields.get(name), operator, value) for name in ([names] if isinstance(names, str) else names))

    def test(fields: dict) -> bool:
        results = (one(fields, *condition) for condition in conditions)
        return any(results) if logical_operator == "or" else all(results)

    return test
