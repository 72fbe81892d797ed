"""EPUB e-books: the container and package (OPF) read with zipfile and lxml, with entities and network off
(ebooklib is AGPL, so not used); each chapter of the spine is a unit whose headings are its sections."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

import lxml.html
from lxml import etree

from .base import Block, Extraction, Reader, SkippedFile, open_zip, read_member, tidy

XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
HTML = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
BLOCKS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "tr", "dt", "dd", "blockquote", "figcaption"}


def xml(data: bytes, name: str) -> etree._Element:
    try:
        return etree.fromstring(data, XML)
    except etree.XMLSyntaxError as exc:
        raise SkippedFile(f"not a valid EPUB ({name} is not well-formed XML: {exc})") from exc


def chapter(data: bytes) -> tuple[list[str], list[Block]]:
    """Lines and blocks of one XHTML chapter: each outermost block element (heading, paragraph, list item,
    table row, …) is a line."""
    try:
        root = lxml.html.fromstring(data, parser=HTML)
    except (etree.ParserError, ValueError):
        return [], []
    lines: list[str] = []
    blocks: list[Block] = []
    for element in root.iter(*BLOCKS):
        if any(ancestor.tag in BLOCKS for ancestor in element.iterancestors()):
            continue
        if element.tag == "tr":
            text = " | ".join(tidy(cell.text_content()) for cell in element.iter("td", "th"))
        elif element.tag == "pre":
            text = element.text_content().strip()
        else:
            text = tidy(element.text_content())
        lines.append(text)
        if text:
            level = int(element.tag[1]) if element.tag[0] == "h" and element.tag[1:].isdigit() else None
            blocks.append(Block(text, len(lines), level=level))
    return lines, blocks


class EpubReader(Reader):
    name = "epub"
    suffixes = (".epub",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and b"application/epub+zip" in head[:100]

    def read(self, data: bytes, name: str) -> Extraction:
        archive = open_zip(data, "EPUB")
        container = xml(read_member(archive, "META-INF/container.xml", "EPUB"), "container.xml")
        rootfile = container.find(".//c:rootfile", NS)
        if rootfile is None or not rootfile.get("full-path"):
            raise SkippedFile("not a valid EPUB (container.xml names no package file)")
        opf_path = rootfile.get("full-path", "")
        opf = xml(read_member(archive, opf_path, "EPUB"), opf_path)
        base = posixpath.dirname(opf_path)
        hrefs = {item.get("id"): item.get("href", "") for item in opf.iterfind(".//opf:manifest/opf:item", NS)}
        pages: list[list[str]] = []
        blocks: list[Block] = []
        for ref in opf.iterfind(".//opf:spine/opf:itemref", NS):
            href = hrefs.get(ref.get("idref"))
            if not href:
                continue
            path = posixpath.normpath(posixpath.join(base, unquote(href)))
            lines, found = chapter(read_member(archive, path, "EPUB"))
            if found:
                pages.append(lines)
                number = len(pages)
                blocks += [Block(b.text, b.line, b.lines, b.level, {"chapter": number}) for b in found]
        if not blocks:
            raise SkippedFile("no text in the e-book's chapters (images only?)")

        def dc(field: str) -> str:
            element = opf.find(f".//opf:metadata/dc:{field}", NS)
            return tidy(element.text or "") if element is not None else ""

        meta = {"title": dc("title"), "publisher": dc("creator") or dc("publisher"), "date": dc("date")[:10]}
        return Extraction(pages, blocks, {k: v for k, v in meta.items() if v}, unit="chapter", encoding="epub")
