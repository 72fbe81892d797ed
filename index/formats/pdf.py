"""PDF with a text layer, through pypdfium2 (PDFium; Apache-2.0/BSD-3): lines in reading order (a two-column
page is read column by column), running headers, footers and page numbers removed, wrapped lines joined into
paragraphs. A citation names the page and the line within that page's extracted text.

PDFium was measured against pdfplumber, pdfminer.six and pypdf on real Chinese PDFs (docs/formats.md): as
right as the best on reading order, the only one that gives 人 rather than the Kangxi radical ⼈ on a
browser-printed page, and 10–20× faster. It is not thread-safe: one lock serialises every use."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium

from .base import HYPHENATED, MAX_PAGES, Block, Extraction, Reader, SkippedFile, credible_author, join_lines, tidy

MARGIN = 0.1  # running headers and footers sit in the top and bottom tenth of a page
PAGE_NUMBER = re.compile(r"^[-—–−\s]*(第\s*)?\d+\s*(页)?[-—–−\s]*$|^\d+\s*/\s*\d+$|^(page|p\.)\s*\d+", re.I)
SENTENCE_END = re.compile(r"[。！？；：!?;:][”’\"」』）)]*$")
UNMAPPED = re.compile("\ufffd")  # glyphs without a Unicode mapping come out as this
MIN_CHARS_PER_PAGE = 3  # fewer, and the "text" is a scanner's stray marks or a page number: no text layer
PDFIUM = threading.Lock()  # PDFium keeps global state: one document operation at a time in this process
OCR_HINT = "run OCR on it first (for example `ocrmypdf --language chi_sim in.pdf out.pdf`) and add the result"


@dataclass
class Line:
    """One line of a page: its text and box, in PDF points from the top-left corner."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float


def page_words(page: pdfium.PdfPage) -> list[dict]:
    """The page's words (runs of characters without a space or a gap between them) with their boxes, in
    points from the top-left corner, as the file orders its characters."""
    height = page.get_height()
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        text = textpage.get_text_range(0, count) if count else ""
        words: list[dict] = []
        word: dict | None = None
        for index, char in enumerate(text[:count]):
            if char.isspace() or "\ue000" <= char <= "\uf8ff":  # private-use glyphs: a symbol font's bullets
                word = None
                continue
            char = "-" if char == "\ufffe" else char  # PDFium's mark for a hyphen that ends a line
            left, low, right, high = textpage.get_charbox(index, loose=True)
            top, bottom, size = height - high, height - low, max(high - low, 1.0)
            if word is not None and (abs(top - word["top"]) > 0.5 * size or not -size < left - word["x1"] < 0.6 * size):
                word = None
            if word is None:
                word = {"text": "", "x0": left, "x1": right, "top": top, "bottom": bottom, "sizes": []}
                words.append(word)
            word["text"] += char
            word["x1"], word["bottom"] = max(word["x1"], right), max(word["bottom"], bottom)
            word["sizes"].append(size)
        return words
    finally:
        textpage.close()


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


def furniture(pages: list[tuple[list[Line], float]]) -> list[set[int]]:
    """Per page, the indexes of lines that are running headers, footers or page numbers: in the top or bottom
    margin and either a page number or repeated (digits aside) on several pages."""

    def key(text: str) -> str:  # digits aside, and a page number at either end ("人工智能 3/13", "— 2 —")
        return re.sub(r"\d+", "#", text.replace(" ", "")).strip("#/-—–|·第页")

    margins: list[list[int]] = []
    for lines, height in pages:
        margins.append(
            [i for i, line in enumerate(lines) if line.top < height * MARGIN or line.bottom > height * (1 - MARGIN)]
        )
    seen = Counter(key(pages[p][0][i].text) for p, found in enumerate(margins) for i in set(found))
    repeated = max(2, len(pages) // 3)
    return [
        {i for i in found if PAGE_NUMBER.match(pages[p][0][i].text) or seen[key(pages[p][0][i].text)] >= repeated}
        for p, found in enumerate(margins)
    ]


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
            if (full or nearly) and not indented and same_size and near and line.x0 < before.x1:
                continue
        spans.append((start, i - start))
        start = i
    return spans


def pdf_date(raw: str) -> str | None:
    """ "D:20240201093000+08'00'" → "2024-02-01"."""
    match = re.match(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?", raw.strip())
    if not match:
        return None
    year, month, day = match.groups()
    return "-".join(part for part in (year, month, day) if part)


def metadata(info: dict) -> dict[str, str]:
    """Title, author and date from the PDF's info dictionary; a title that is only a file name is no title."""

    def text(name: str) -> str:
        return tidy(str(info.get(name) or ""))

    meta: dict[str, str] = {}
    title = text("Title")
    if title and not re.search(r"\.(docx?|wps|pdf|txt|xlsx?)$|^Microsoft Word", title, re.I):
        meta["title"] = title
    if credible_author(text("Author")):
        meta["publisher"] = credible_author(text("Author"))
    date = pdf_date(text("CreationDate"))
    if date:
        meta["date"] = date
    return meta


class PdfReader(Reader):
    name = "pdf"
    suffixes = (".pdf",)

    def sniff(self, head: bytes) -> bool:
        return b"%PDF-" in head[:1024]

    def read(self, data: bytes, name: str) -> Extraction:
        if b"%%EOF" not in data[-4096:]:
            raise SkippedFile("a truncated or damaged PDF (it has no end-of-file marker); copy or download it again")
        with PDFIUM:
            try:
                pdf = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                if "password" in str(exc).lower():
                    raise SkippedFile("the PDF is encrypted (password-protected); save an unprotected copy") from exc
                raise SkippedFile(f"not a readable PDF ({exc})") from exc
            try:
                if len(pdf) > MAX_PAGES:
                    raise SkippedFile(f"{len(pdf)} pages, over the limit of {MAX_PAGES} (set WENDA_MAX_PAGES)")
                pages, images = [], 0
                for number in range(len(pdf)):
                    page = pdf[number]
                    try:
                        pages.append((reading_order(page_words(page), page.get_width()), page.get_height()))
                        images += sum(1 for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=2))
                    finally:
                        page.close()  # one page's objects in memory at a time
                meta = metadata(pdf.get_metadata_dict(skip_empty=True))
            finally:
                pdf.close()
        text = "".join(line.text for lines, _ in pages for line in lines)
        if len(text.replace(" ", "")) < MIN_CHARS_PER_PAGE * max(1, len(pages)):
            what = f"no text layer ({len(pages)} page(s) of images: a scan)" if images else "no text in it"
            raise SkippedFile(f"{what}; {OCR_HINT}")
        if len(UNMAPPED.findall(text)) > len(text) * 0.1:
            raise SkippedFile(f"its fonts have no Unicode mapping, so its text would come out garbled; {OCR_HINT}")
        dropped = furniture(pages)
        extracted: list[list[str]] = []
        blocks: list[Block] = []
        for number, ((lines, _), skip) in enumerate(zip(pages, dropped, strict=True), start=1):
            body = [line for i, line in enumerate(lines) if i not in skip]
            extracted.append([line.text for line in body])
            for first, count in paragraphs(body):
                text = join_lines([line.text for line in body[first : first + count]])
                blocks.append(Block(text, first + 1, lines=count, where={"page": number}))
        return Extraction(extracted, blocks, meta, unit="page", encoding="pdf", shaped_headings=True)
