"""Web pages saved from a browser, through trafilatura: the article's main text without menus, ads, comments or
related-article lists; title, author or site and date from the page's metadata; the page's URL from the
browser's "saved from url" mark or its canonical link. A citation names the line of the extracted main text."""

from __future__ import annotations

import re

from lxml import etree

from .base import SAVED_FROM, Block, Extraction, Reader, SkippedFile, clean_title, credible_author, tidy

HEADING = re.compile(r"h(\d)")
LAYOUT_CELL_CHARS = 300  # a data table's cell is a name or a number; a layout table's cell is the article
MOSTLY_LEFT_OUT = 0.5  # main text under half the visible text: the extraction took the page for boilerplate
SMALL_PAGE_CHARS = 3000  # a page this small is all content (an ad, a datasheet): then all its text is read
BLOCK_TAGS = ("p", "div", "td", "th", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "dd", "dt")


def saved_from(data: bytes) -> str | None:
    """The URL a browser (or `wenda add`) noted at the top of a saved page."""
    match = SAVED_FROM.search(data[:4096])
    url = match.group(1).decode("ascii", "replace") if match else None
    return url if url and url.startswith(("http://", "https://")) else None


def text_of(element: etree._Element) -> str:
    return tidy("".join(element.itertext()))


def body_blocks(body: etree._Element) -> tuple[list[str], list[Block]]:
    """Lines and blocks of trafilatura's main-text XML: head, p, list items, table rows (header as context)."""
    lines: list[str] = []
    blocks: list[Block] = []
    tables = 0

    def add(text: str, **kwargs) -> None:
        lines.append(text)
        if text:
            blocks.append(Block(text, len(lines), **kwargs))

    for element in body:
        if element.tag == "head":
            match = HEADING.fullmatch(element.get("rend", ""))
            add(text_of(element), level=int(match.group(1)) if match else 2)
        elif element.tag == "list":
            for item in element.iter("item"):
                add(text_of(item))
        elif element.tag == "table":
            tables += 1
            rows = [[text_of(cell) for cell in row.iter("cell")] for row in element.iter("row")]
            header = " | ".join(rows[0]) if len(rows) > 1 else None
            for number, cells in enumerate(rows, start=1):
                if number == 1 and header is not None:
                    lines.append(header)
                else:
                    add(" | ".join(cells), where={"table": tables, "row": number}, context=header)
        elif element.tag == "code":
            add("".join(element.itertext()).strip())
        else:  # p, quote and whatever else trafilatura keeps as a paragraph
            add(text_of(element))
    return lines, blocks


def extract(data: bytes, tables: bool, recall: bool = False):  # -> trafilatura's Document | None
    """The main text without comments; with tables, precision over recall (less boilerplate on real pages);
    without (a page laid out in a table, where precision finds nothing), the default balance; with `recall`,
    recall over precision (a page the precise extraction left mostly out)."""
    import trafilatura  # here, not at the top: 0.3 s that only a corpus with web pages needs

    return trafilatura.bare_extraction(
        data,
        with_metadata=True,
        include_tables=tables,
        include_comments=False,
        favor_precision=tables and not recall,
        favor_recall=recall,
    )


def visible_lines(data: bytes) -> list[str]:
    """All the text a browser shows, one line per block element: for a small page that is all links or table
    cells (an ad, a datasheet), which main-text extraction takes for boilerplate."""
    from trafilatura.utils import load_html

    tree = load_html(data)
    if tree is None:
        return []
    for hidden in tree.xpath("//script|//style|//noscript|//template|//head"):
        hidden.getparent().remove(hidden)
    for element in tree.iter(*BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
        element.text = "\n" + (element.text or "")
    return [line for line in (tidy(raw) for raw in "".join(tree.itertext()).splitlines()) if line]


def main_text(document) -> tuple[list[str], list[Block]]:  # noqa: ANN001 - trafilatura's Document | None
    """Lines and blocks of an extraction; none when it found nothing."""
    return body_blocks(document.body) if document is not None and document.body is not None else ([], [])


def chars(lines: list[str]) -> int:
    return sum(len(line.replace(" ", "")) for line in lines)


def layout_table(body: etree._Element) -> bool:
    """A table used for page layout rather than data: a cell holding a whole article's worth of text."""
    return any(len(text_of(cell)) > LAYOUT_CELL_CHARS for cell in body.iter("cell"))


class HtmlReader(Reader):
    name = "html"
    suffixes = (".html", ".htm", ".xhtml")

    def sniff(self, head: bytes) -> bool:
        start = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        return start.startswith((b"<!doctype html", b"<html", b"<!-- saved from url"))

    def read(self, data: bytes, name: str) -> Extraction:
        try:
            document = extract(data, tables=True)
            if document is not None and document.body is not None and layout_table(document.body):
                document = extract(data, tables=False) or document  # an old page laid out in a table
            lines, blocks = main_text(document)
            visible = visible_lines(data)
            # a small page is all content: whatever the precise extraction left out, the recall one may keep
            if chars(lines) < MOSTLY_LEFT_OUT * chars(visible) or chars(visible) <= SMALL_PAGE_CHARS:
                again = extract(data, tables=True, recall=True)
                more = main_text(again)
                if chars(more[0]) > chars(lines):
                    document, (lines, blocks) = again, more
        except Exception as exc:  # noqa: BLE001 - the extractor raises many types on hostile input
            raise SkippedFile(f"not a readable web page ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if chars(lines) < MOSTLY_LEFT_OUT * chars(visible) and chars(visible) <= SMALL_PAGE_CHARS:
            lines, blocks = visible, [Block(line, number) for number, line in enumerate(visible, start=1)]
        if not blocks:
            raise SkippedFile("no article text found in the page (only menus, links or scripts)")
        meta = {"url": saved_from(data) or ""}
        if document is not None:  # none when only the visible text was left
            meta |= {
                "title": clean_title(document.title or ""),
                "publisher": credible_author(document.sitename or ""),
                "date": document.date or "",
                "url": meta["url"] or document.url or "",
            }
        return Extraction([lines], blocks, {k: v for k, v in meta.items() if v}, encoding="html")
