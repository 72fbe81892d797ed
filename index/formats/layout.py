"""Text lines on a page into reading order and paragraphs, from boxes alone: shared by the PDF text layer and
OCR, which both give positioned text without paragraphs (a two-column page is read column by column)."""

from __future__ import annotations

import itertools
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
    region: int = 0  # lines of one column (or one band across columns) share it: a paragraph stays inside it


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


def gutter(words: list[dict], width: float, left_edge: float = 0.0) -> float | None:
    """The x of the gap between two columns of the region from `left_edge` to `width`, when it has two: few words
    cross it, many lie on each side."""
    if len(words) < 10:
        return None
    x0 = np.array([w["x0"] for w in words])
    x1 = np.array([w["x1"] for w in words])
    span = width - left_edge
    xs = np.arange(int(left_edge + span * 0.3), int(left_edge + span * 0.7), dtype=float)
    if not len(xs):  # a page a few points wide
        return None
    crossings = ((x0[:, None] < xs) & (xs < x1[:, None])).sum(axis=0)
    crossing, x = int(crossings.min()), float(xs[int(crossings.argmin())])
    left = sum(1 for w in words if w["x1"] <= x)
    right = sum(1 for w in words if w["x0"] >= x)
    # rows with words on both sides; columns need not share baselines (each keeps its own line grid)
    right_rows = {round(w["top"] / 4) + d for w in words if w["x0"] >= x for d in (-1, 0, 1)}
    side_by_side = {round(w["top"] / 4) for w in words if w["x1"] <= x} & right_rows
    if crossing <= len(words) * 0.1 and min(left, right) >= len(words) * 0.2 and len(side_by_side) >= 3:
        return x
    return None


COLUMN_DEPTH = 3  # a region is split at most this many times: up to 4 columns (a newspaper, the Federal Register)


def reading_order(words: list[dict], width: float) -> list[Line]:
    """Lines in reading order: a band of full-width lines, then each column of the band below it, and so on; a
    column that has columns of its own (a three-column page is first cut in two) is read the same way. Each
    line's `region` names the column or band it was read in."""
    regions = itertools.count(1)

    def region(found: list[Line]) -> list[Line]:
        number = next(regions)
        for line in found:
            line.region = number
        return found

    def order(words: list[dict], right_edge: float, left_edge: float, depth: int) -> list[Line]:
        x = gutter(words, right_edge, left_edge) if depth < COLUMN_DEPTH else None
        if x is None:
            return region(group_lines(words))
        lines: list[Line] = []
        band: list[dict] = []
        across: list[dict] = []  # rows across the gutter (a title, a table), read as one band

        def columns() -> list[Line]:
            left = [w for w in band if w["x1"] <= x]
            right = [w for w in band if w["x1"] > x]
            start = min((w["x0"] for w in left), default=left_edge)
            end = max((w["x1"] for w in right), default=right_edge)
            return order(left, x, start, depth + 1) + order(right, end, x, depth + 1)

        for line_words in _rows(words):
            if any(w["x0"] < x < w["x1"] for w in line_words):  # a title or table across both columns ends the band
                if band:
                    lines += columns()
                    band = []
                across += line_words
            else:
                if across:
                    lines += region(group_lines(across))
                    across = []
                band += line_words
        if across:
            lines += region(group_lines(across))
        return lines + (columns() if band else [])

    return order(words, width, 0.0, 0)


def _rows(words: list[dict]) -> list[list[dict]]:
    rows: list[list[dict]] = []
    for word in sorted(words, key=lambda w: w["top"]):
        if rows and word["top"] < max(w["bottom"] for w in rows[-1]) - 1:
            rows[-1].append(word)
        else:
            rows.append([word])
    return rows


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
            column = [
                other
                for other in lines
                if other.region == before.region and other.x0 < before.x1 and other.x1 > before.x0
            ] or [before]
            right = max(other.x1 for other in column)
            # the edge most of its lines start at: a stray mark in the margin (a rotated filing stamp) is not it
            left = float(np.percentile([other.x0 for other in column], 10))
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
