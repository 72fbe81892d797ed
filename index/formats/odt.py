"""OpenDocument text (.odt: LibreOffice, OpenOffice, WPS) read with zipfile and lxml, entities and network off
(odfpy would be one more dependency for the same walk): content.xml's body in order, one line per paragraph,
heading (its outline level the heading level, so headings are sections), list item and table row (one passage
per row with the header row as context, as for Word); text boxes and then footnotes after the body; title,
author and date from meta.xml. Tracked deletions, comments, tables of contents and ruby annotations are left
out."""

from __future__ import annotations

from lxml import etree

from .base import Block, Extraction, Reader, SkippedFile, credible_author, open_zip, read_member, tidy

XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
MIMETYPE = b"application/vnd.oasis.opendocument.text"  # also -template and -master, which read the same
MAX_REPEAT = 64  # a cell repeated more often than this (LibreOffice pads rows to 1,024 columns) counts once


def q(name: str) -> str:
    """Clark notation for a prefixed name: q("text:p") == "{urn:…:text:1.0}p"."""
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


P, H, SPACE, TAB, BREAK = q("text:p"), q("text:h"), q("text:s"), q("text:tab"), q("text:line-break")
NOTE, NOTE_CITATION, NOTE_BODY = q("text:note"), q("text:note-citation"), q("text:note-body")
FRAME, TEXT_BOX = q("draw:frame"), q("draw:text-box")
CONTAINERS = {q(n) for n in ("text:list", "text:list-item", "text:list-header", "text:section", "text:soft-page-break")}
ROW_GROUPS = {q(n) for n in ("table:table-header-rows", "table:table-rows", "table:table-row-group")}
TABLE, ROW, CELL = q("table:table"), q("table:table-row"), q("table:table-cell")
# Inline elements whose text is not the paragraph's own: comments, ruby readings, deleted text's marks.
SKIPPED = {q(n) for n in ("office:annotation", "text:ruby-text", "text:change", "text:change-start", "text:change-end")}


class Body:
    """The lines and blocks of a document's body, and the text boxes and footnotes met on the way."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.blocks: list[Block] = []
        self.boxes: list[etree._Element] = []
        self.notes: list[tuple[str, etree._Element]] = []
        self.tables = 0

    def add(self, text: str, **kwargs) -> None:
        self.lines.append(text)
        if text:
            self.blocks.append(Block(text, len(self.lines), **kwargs))

    def inline(self, element: etree._Element) -> str:
        """A paragraph's own text: spaces, tabs and line breaks as whitespace; notes and frames set aside."""
        parts = [element.text or ""]
        for child in element:
            if child.tag in (SPACE, TAB, BREAK):
                parts.append(" ")
            elif child.tag == NOTE:
                citation = child.find(NOTE_CITATION)
                body = child.find(NOTE_BODY)
                if body is not None:
                    self.notes.append((tidy(citation.text or "") if citation is not None else "", body))
            elif child.tag == FRAME:
                self.boxes += child.findall(TEXT_BOX)
            elif child.tag not in SKIPPED and isinstance(child.tag, str):
                parts.append(self.inline(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def walk(self, parent: etree._Element) -> None:
        """Paragraphs, headings, lists, sections and tables in body order; anything else holds no body text
        (declarations, tracked changes, tables of contents)."""
        for element in parent:
            if element.tag == P:
                self.add(tidy(self.inline(element)))
            elif element.tag == H:
                level = element.get(q("text:outline-level"), "1")
                self.add(tidy(self.inline(element)), level=min(max(int(level), 1), 9) if level.isdigit() else 1)
            elif element.tag in CONTAINERS:
                self.walk(element)
            elif element.tag == TABLE:
                self.table(element)
            elif element.tag == FRAME:  # anchored to the page
                self.boxes += element.findall(TEXT_BOX)

    def cell_text(self, cell: etree._Element) -> str:
        return tidy(" ".join(self.inline(p) for p in cell.iter(P, H)))

    def table(self, element: etree._Element) -> None:
        self.tables += 1
        number = self.tables
        rows = []
        for row in rows_of(element):
            cells: list[str] = []
            for cell in row:
                if cell.tag == CELL:
                    text = self.cell_text(cell)
                    repeat = cell.get(q("table:number-columns-repeated"), "1")
                    cells += [text] * (min(int(repeat), MAX_REPEAT) if repeat.isdigit() and text else 1)
            while cells and not cells[-1]:
                cells.pop()
            rows.append(cells)
        header = " | ".join(rows[0]) if len(rows) > 1 else None
        for index, cells in enumerate(rows, start=1):
            if index == 1 and header is not None:
                self.lines.append(header)
            else:
                self.add(" | ".join(cells), where={"table": number, "row": index}, context=header)


def rows_of(table: etree._Element) -> list[etree._Element]:
    """A table's rows, in header, body and row groups too, but not those of a table nested in a cell."""
    rows = []
    for child in table:
        if child.tag == ROW:
            rows.append(child)
        elif child.tag in ROW_GROUPS:
            rows += rows_of(child)
    return rows


def in_box(paragraph: etree._Element, box: etree._Element) -> bool:
    """True when the paragraph is the box's own, not that of a text box inside it."""
    for ancestor in paragraph.iterancestors():
        if ancestor is box:
            return True
        if ancestor.tag == TEXT_BOX:
            return False
    return False


def parse(data: bytes, name: str) -> etree._Element:
    try:
        return etree.fromstring(data, XML)
    except etree.XMLSyntaxError as exc:
        raise SkippedFile(f"not a valid OpenDocument file ({name} is not well-formed XML: {exc})") from exc


def metadata(root: etree._Element) -> dict[str, str]:
    """Title, author (as publisher) and creation date from meta.xml."""

    def field(path: str) -> str:
        element = root.find(f"office:meta/{path}", NS)
        return tidy(element.text or "") if element is not None else ""

    meta = {
        "title": field("dc:title"),
        "publisher": credible_author(field("meta:initial-creator") or field("dc:creator")),
        "date": field("meta:creation-date")[:10],
    }
    return {k: v for k, v in meta.items() if v}


class OdtReader(Reader):
    name = "odt"
    suffixes = (".odt",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and MIMETYPE in head[:100]

    def read(self, data: bytes, name: str) -> Extraction:
        archive = open_zip(data, "OpenDocument")
        if "mimetype" in archive.namelist():
            mimetype = read_member(archive, "mimetype", "OpenDocument").strip()
            if not mimetype.startswith(MIMETYPE):
                kind = mimetype.decode("ascii", "replace")[:80]
                raise SkippedFile(f"not an OpenDocument text but {kind}; save it as .odt or .docx and add that")
        content = parse(read_member(archive, "content.xml", "OpenDocument"), "content.xml")
        text = content.find("office:body/office:text", NS)
        if text is None:
            raise SkippedFile("not an OpenDocument text (content.xml has no text body); save it as .odt or .docx")
        body = Body()
        body.walk(text)
        for number, box in enumerate(body.boxes, start=1):  # a frame in a text box adds its boxes, read in turn
            for paragraph in box.iter(P, H):
                if in_box(paragraph, box):
                    body.add(tidy(body.inline(paragraph)), where={"text_box": number})
        for number, (citation, note) in enumerate(body.notes, start=1):
            text = tidy(" ".join(body.inline(p) for p in note.iter(P, H)))
            body.add(text, where={"footnote": int(citation) if citation.isdigit() else number})
        meta = {}
        if "meta.xml" in archive.namelist():
            meta = metadata(parse(read_member(archive, "meta.xml", "OpenDocument"), "meta.xml"))
        return Extraction([body.lines], body.blocks, meta, encoding="odt")
