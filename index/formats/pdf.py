"""PDF with a text layer, through pypdfium2 (PDFium; Apache-2.0/BSD-3): lines in reading order (a two-column
page is read column by column), running headers, footers and page numbers removed, wrapped lines joined into
paragraphs. A citation names the page and the line within that page's extracted text.

PDFium was measured against pdfplumber, pdfminer.six and pypdf on real Chinese PDFs (docs/formats.md): as
right as the best on reading order, the only one that gives 人 rather than the Kangxi radical ⼈ on a
browser-printed page, and 10–20× faster. It is not thread-safe: one lock serialises every use."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter

import pypdfium2 as pdfium
from PIL import Image

from .base import MAX_PAGES, Block, Extraction, Reader, SkippedFile, credible_author, join_lines, tidy
from .layout import Line, paragraphs, reading_order
from .ocr import DPI, MAX_SIDE, layout_lines, page_blocks, recognise_pages, unavailable

MARGIN = 0.1  # running headers and footers sit in the top and bottom tenth of a page
PAGE_NUMBER = re.compile(r"^[-—–−\s]*(第\s*)?\d+\s*(页)?[-—–−\s]*$|^\d+\s*/\s*\d+$|^(page|p\.)\s*\d+", re.I)
MIN_CHARS = 3  # fewer in the whole file, and the "text" is a scanner's stray marks: no text in it
PDFIUM = threading.Lock()  # PDFium keeps global state: one document operation at a time in this process
SCAN_CHARS = 30  # a page with fewer characters of text layer than this ...
SCAN_COVER = 0.05  # ... and this much of it drawn (a scanned image, text as outlines) is OCRed


def page_words(page: pdfium.PdfPage) -> tuple[list[dict], str]:
    """The page's words (runs of characters without a space or a gap between them) with their boxes, in
    points from the top-left corner, as the file orders its characters; and the page's raw text."""
    height = page.get_height()
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        text = textpage.get_text_range(0, count) if count else ""
        turned = rotated(textpage, count)
        words: list[dict] = []
        word: dict | None = None
        pending = ""  # glyphs with an empty box (some producers give a word's first letter none): they join the next
        for index, char in enumerate(text[:count]):
            if char.isspace() or "\ue000" <= char <= "\uf8ff" or index in turned:  # private use: bullets
                if pending and word is not None:
                    word["text"] += pending
                pending, word = "", None
                continue
            char = "-" if char == "\ufffe" else char  # PDFium's mark for a hyphen that ends a line
            left, low, right, high = textpage.get_charbox(index, loose=True)
            if right - left < 0.01 and high - low < 0.01:
                pending += char
                continue
            top, bottom, size = height - high, height - low, max(high - low, 1.0)
            if word is not None and (abs(top - word["top"]) > 0.5 * size or not -size < left - word["x1"] < 0.6 * size):
                word = None
            if word is None:
                word = {"text": "", "x0": left, "x1": right, "top": top, "bottom": bottom, "sizes": []}
                words.append(word)
            word["text"] += pending + char
            pending = ""
            word["x1"], word["bottom"] = max(word["x1"], right), max(word["bottom"], bottom)
            word["sizes"].append(size)
        return words, text
    finally:
        textpage.close()


TURNED_SHARE = 0.2  # rotated glyphs up to this share of a page are margin furniture; more, the page's own text


def rotated(textpage: pdfium.PdfTextPage, count: int) -> set[int]:
    """Indexes of the glyphs set at an angle (a filing stamp up the margin, a vertical "PROPOSED RULES" banner)
    when they are a small part of the page: mixed into the rows of the upright text they garbled its lines and
    hid the column's edge (the Federal Register's first page). A page mostly at an angle keeps them all."""
    turned = {
        index for index in range(count) if 0.05 < pdfium.raw.FPDFText_GetCharAngle(textpage.raw, index) < 6.23
    }  # radians in [0, 2π); -1 for an error
    return turned if len(turned) <= TURNED_SHARE * count else set()


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


def drawn_cover(page: pdfium.PdfPage) -> float:
    """The share of the page covered by images and vector drawings (overlaps counted twice, capped at 1): a scan
    is one big image; text drawn as outlines is paths."""
    area = page.get_width() * page.get_height() or 1.0
    covered = 0.0
    kinds = [pdfium.raw.FPDF_PAGEOBJ_IMAGE, pdfium.raw.FPDF_PAGEOBJ_PATH]
    for drawing in page.get_objects(filter=kinds, max_depth=2):
        left, bottom, right, top = drawing.get_bounds()
        covered += max(right - left, 0.0) * max(top - bottom, 0.0)
    return min(covered / area, 1.0)


def garbled(text: str) -> bool:
    """A text layer that is not text: glyphs with no Unicode mapping (U+FFFD, private-use or control codes), or
    a font's raw codes read as Latin-1 symbols (a CJK font without a ToUnicode map). Such a page is OCRed."""
    chars = [char for char in text if not char.isspace()]
    if not chars:
        return False
    bad = sum(1 for char in chars if char == "\ufffd" or unicodedata.category(char) in ("Co", "Cc", "Cn", "Cs"))
    latin1 = sum(1 for char in chars if "\x80" <= char <= "\xff")
    return bad > 0.1 * len(chars) or latin1 > 0.3 * len(chars)


class PdfReader(Reader):
    """A page with a usable text layer is read from it; a page without one (a scan) or with a garbled one is
    read by OCR (`ocr.py`), citing the box of each recognised paragraph."""

    name = "pdf"
    suffixes = (".pdf",)

    def sniff(self, head: bytes) -> bool:
        return b"%PDF-" in head[:1024]

    def read(self, data: bytes, name: str) -> Extraction:
        with PDFIUM:
            pdf = self._open(data)
            try:
                if len(pdf) == 0:
                    raise SkippedFile("a PDF with no pages in it")
                if len(pdf) > MAX_PAGES:
                    raise SkippedFile(f"{len(pdf)} pages, over the limit of {MAX_PAGES} (set WENDA_MAX_PAGES)")
                pages: list[tuple[list[Line], float]] = []
                scans: list[int] = []  # pages to OCR, 0-based
                garbage: set[int] = set()  # of them, those whose text layer is garbled: never indexed as it is
                for number in range(len(pdf)):
                    page = pdf[number]
                    try:
                        words, raw = page_words(page)
                        lines = reading_order(words, page.get_width())
                        chars = sum(len(line.text.replace(" ", "")) for line in lines)
                        if garbled(raw):
                            garbage.add(number)
                        if number in garbage or (chars < SCAN_CHARS and drawn_cover(page) >= SCAN_COVER):
                            scans.append(number)
                        pages.append((lines, page.get_height()))
                    finally:
                        page.close()  # one page's objects in memory at a time
                meta = metadata(pdf.get_metadata_dict(skip_empty=True))
                cannot = unavailable() if scans else None
                recognised = self._ocr(pdf, data, scans) if scans and not cannot else {}
            finally:
                pdf.close()
        for number in garbage - set(recognised):
            pages[number] = ([], pages[number][1])  # garbled and not OCRed (OCR off): left out, not indexed
        for number, lines in recognised.items():
            pages[number] = (lines, pages[number][1])
        text = "".join(line.text for lines, _ in pages for line in lines)
        if len(text.replace(" ", "")) < MIN_CHARS and not recognised:
            if garbage and cannot:
                raise SkippedFile(f"its fonts have no Unicode mapping, so its text comes out garbled, and {cannot}")
            scan = f"no text layer ({len(scans)} page(s) of images: a scan) and {cannot}"
            raise SkippedFile(scan if cannot else "no text in it")
        dropped = furniture(pages)
        extracted: list[list[str]] = []
        blocks: list[Block] = []
        for number, ((lines, _), skip) in enumerate(zip(pages, dropped, strict=True), start=1):
            body = [line for i, line in enumerate(lines) if i not in skip]
            extracted.append([line.text for line in body])
            if number - 1 in recognised:
                blocks += page_blocks(body, number)
                continue
            for first, count in paragraphs(body):
                text = join_lines([line.text for line in body[first : first + count]])
                blocks.append(Block(text, first + 1, lines=count, where={"page": number}))
        if not blocks:
            raise SkippedFile("no legible text in it (its pages are blank or their images hold no text)")
        how = "text" if not recognised else "ocr" if len(recognised) == len(pages) else "both"
        return Extraction(extracted, blocks, meta, unit="page", encoding="pdf", shaped_headings=True, ocr=how)

    def _open(self, data: bytes) -> pdfium.PdfDocument:
        try:
            return pdfium.PdfDocument(data)  # an empty user password is tried by PDFium itself
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise SkippedFile("the PDF is encrypted (password-protected); save an unprotected copy") from exc
            if b"%%EOF" not in data[-4096:]:
                raise SkippedFile("a truncated or damaged PDF (it has no end-of-file marker); copy it again") from exc
            raise SkippedFile(f"not a readable PDF ({exc})") from exc

    def _ocr(self, pdf: pdfium.PdfDocument, data: bytes, scans: list[int]) -> dict[int, list[Line]]:
        """The OCRed lines of these pages (0-based), in reading order, in PDF points."""

        def render(number: int):
            def image() -> tuple[Image.Image, float]:
                page = pdf[number]
                try:
                    scale = min(DPI / 72, MAX_SIDE / max(page.get_width(), page.get_height()))
                    return page.render(scale=scale).to_pil().convert("RGB"), scale
                finally:
                    page.close()

            return image

        found = {}
        for number, lines in recognise_pages(data, [(n + 1, render(n)) for n in scans]):
            width = max((line.box[2] for line in lines), default=1.0)
            found[number - 1] = layout_lines(lines, width)
        return found
