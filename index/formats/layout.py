"""Text lines on a page into reading order and paragraphs, from boxes alone: shared by the PDF text layer and
OCR, which both give positioned text without paragraphs (a two-column page is read column by column)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .base import HYPHENATED, tidy

LABEL_CHARS = 60  # a form label with its item number ("* 12. Funding Opportunity Number:") runs to 40-odd
SENTENCE_END = re.compile(r"[。！？；：!?;:][”’\"」』）)]*$")


@dataclass
class Line:
    """One line of a page: its text and box, in PDF points from the top-left corner."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float


def group_lines(words: list[dict]) -> list[Line]:
    """Words (one region of a page) grouped into lines by their vertical position, top to bottom."""
    lines: list[list[dict]] = []
    for word in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if lines and abs(word["top"] - lines[-1][0]["top"]) <= (word["bottom"] - word["top"]) * 0.5:
            lines[-1].append(word)
        else:
            lines.append([word])
    result = []
    for line in lines:
        line.sort(key=lambda w: w["x0"])
        size = float(np.median([size for w in line for size in w["sizes"]]))  # one tall glyph is not a type size
        text = tidy(" ".join(w["text"] for w in line))
        result.append(Line(text, line[0]["x0"], line[-1]["x1"], line[0]["top"], line[-1]["bottom"], size))
    return sorted((line for line in result if line.text), key=lambda line: line.top)


def gutter(words: list[dict], width: float) -> float | None:
    """The x of the gap between two columns, when the page has two: few words cross it, many lie on each side."""
    if len(words) < 10:
        return None
    x0 = np.array([w["x0"] for w in words])
    x1 = np.array([w["x1"] for w in words])
    xs = np.arange(int(width * 0.3), int(width * 0.7), dtype=float)
    if not len(xs):  # a page a few points wide
        return None
    crossings = ((x0[:, None] < xs) & (xs < x1[:, None])).sum(axis=0)
    crossing, x = int(crossings.min()), float(xs[int(crossings.argmin())])
    left = sum(1 for w in words if w["x1"] <= x)
    right = sum(1 for w in words if w["x0"] >= x)
    side_by_side = {round(w["top"]) for w in words if w["x1"] <= x} & {round(w["top"]) for w in words if w["x0"] >= x}
    if crossing <= len(words) * 0.1 and min(left, right) >= len(words) * 0.2 and len(side_by_side) >= 3:
        return x
    return None


def reading_order(words: list[dict], width: float) -> list[Line]:
    """Lines in reading order: a band of full-width lines, then each column of the band below it, and so on."""
    x = gutter(words, width)
    if x is None:
        return group_lines(words)
    lines: list[Line] = []
    band: list[dict] = []
    for line_words in _rows(words):
        if any(w["x0"] < x < w["x1"] for w in line_words):  # a title or table across both columns ends the band
            lines += _columns(band, x) + group_lines(line_words)
            band = []
        else:
            band += line_words
    return lines + _columns(band, x)


def _rows(words: list[dict]) -> list[list[dict]]:
    rows: list[list[dict]] = []
    for word in sorted(words, key=lambda w: w["top"]):
        if rows and word["top"] < max(w["bottom"] for w in rows[-1]) - 1:
            rows[-1].append(word)
        else:
            rows.append([word])
    return rows


def _columns(words: list[dict], x: float) -> list[Line]:
    return group_lines([w for w in words if w["x1"] <= x]) + group_lines([w for w in words if w["x1"] > x])


def paragraphs(lines: list[Line]) -> list[tuple[int, int]]:
    """(first line, count) of each paragraph. A line continues on the next one when it reaches its column's
    right edge, or nearly (a long word wrapped early) without ending a sentence; not when the next one is
    indented, in another type size or far below."""
    if not lines:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(lines) + 1):
        if i < len(lines):
            before, line = lines[i - 1], lines[i]
            # the lines overlapping this one; itself too when it has no width (a glyph with a zero-size box)
            column = [other for other in lines if other.x0 < before.x1 and other.x1 > before.x0] or [before]
            right = max(other.x1 for other in column)
            left = min(other.x0 for other in column)
            full = before.x1 >= right - 1.5 * before.size
            wrapped = before.x1 >= left + (right - left) * 0.75 and not SENTENCE_END.search(before.text)
            nearly = wrapped or bool(HYPHENATED.search(before.text))
            indented = line.x0 > left + 1.2 * line.size
            same_size = abs(line.size - before.size) < 0.15 * before.size
            near = line.top - before.bottom < 1.5 * before.size
            # a short label ending in a colon, its value on the next line ("Chinese (traditional):" / "你好世界")
            label = len(before.text) <= LABEL_CHARS and before.text.endswith((":", "：")) and i - start == 1
            if (full or nearly or label) and not indented and (same_size or label) and near and line.x0 < before.x1:
                continue
        spans.append((start, i - start))
        start = i
    return spans
