"""Word .docx through python-docx: paragraphs in body order, headings (by style or outline level) as
sections, one passage per table row with the header row as context, footnotes. The extracted text has one line
per body paragraph (empty ones too, so numbers match Word's paragraphs) and per table row, then the text boxes'
paragraphs, then the footnotes."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from .base import Block, Extraction, Reader, SkippedFile, credible_author, open_zip, read_member, tidy

HEADING_STYLE = re.compile(r"^(heading|标题)\s*(\d)$", re.I)
# Word never writes a DOCTYPE or a named entity other than XML's five; a file that has them was made by hand or
# by a hostile tool. python-docx keeps an entity it does not resolve as a node of its own, so the text after it
# in the paragraph was lost; an undeclared one failed the whole file.
DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", re.S)
ENTITY = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)[A-Za-z_:][\w.:-]*;")


def without_entities(data: bytes) -> tuple[bytes, int]:
    """The package with DOCTYPEs and unknown named entities dropped from its XML parts (the text around them
    kept), and how many entities were dropped; the package itself when it has none."""
    archive = open_zip(data, "Word")
    dropped = 0
    mended: dict[str, bytes] = {}
    for info in archive.infolist():  # the XML parts only: pictures are neither read nor written again
        if not info.filename.endswith(".xml"):
            continue
        part = read_member(archive, info.filename, "Word")
        if b"<!DOCTYPE" in part or ENTITY.search(part):
            part, count = ENTITY.subn(b"", DOCTYPE.sub(b"", part))
            mended[info.filename], dropped = part, dropped + count
    if not mended:
        return data, 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            part = mended[info.filename] if info.filename in mended else read_member(archive, info.filename, "Word")
            out.writestr(info, part)
    return buffer.getvalue(), dropped


def heading_level(paragraph: Paragraph) -> int | None:
    """1 for a top heading: from the style (Title, Heading N, 标题 N) or the paragraph's outline level."""
    style = paragraph.style.name if paragraph.style is not None else ""
    if style.lower() in ("title", "标题"):
        return 1
    match = HEADING_STYLE.match(style)
    if match:
        return int(match.group(2))
    level = paragraph._p.find(f"{qn('w:pPr')}/{qn('w:outlineLvl')}")
    if level is not None and level.get(qn("w:val"), "9").isdigit() and int(level.get(qn("w:val"))) < 9:
        return int(level.get(qn("w:val"))) + 1
    return None


def row_cells(row) -> list[str]:
    """A row's cell texts, a cell merged across columns counted once."""
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) not in seen:
            seen.add(id(cell._tc))
            cells.append(tidy(cell.text))
    return cells


MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def text_boxes(element) -> list[str]:
    """Texts of the paragraphs inside the text boxes anchored in a body element (w:txbxContent), each once:
    Word writes a box twice, as DrawingML and again as a VML fallback for old readers."""
    found = []
    for box in element.iter(qn("w:txbxContent")):
        if any(ancestor.tag == MC_FALLBACK for ancestor in box.iterancestors()):
            continue
        for paragraph in box.iter(qn("w:p")):
            found.append(tidy("".join(node.text or "" for node in paragraph.iter(qn("w:t")))))
    return [text for text in found if text]


def footnotes(archive_data: bytes) -> list[tuple[str, str]]:
    """(id, text) of each real footnote (ids -1 and 0 are Word's separators)."""
    archive = open_zip(archive_data, "Word")
    if "word/footnotes.xml" not in archive.namelist():
        return []
    root = etree.fromstring(read_member(archive, "word/footnotes.xml", "Word"), etree.XMLParser(resolve_entities=False))
    notes = []
    for note in root.iter(qn("w:footnote")):
        number = note.get(qn("w:id"), "")
        text = tidy("".join(node.text or "" for node in note.iter(qn("w:t"))))
        if number.lstrip("-").isdigit() and int(number) > 0 and text:
            notes.append((number, text))
    return notes


class DocxReader(Reader):
    name = "docx"
    suffixes = (".docx",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and b"word/" in head[:2048]

    def read(self, data: bytes, name: str) -> Extraction:
        open_zip(data, "Word")  # refuse a bomb before python-docx unpacks anything
        try:
            data, entities = without_entities(data)
            document = docx.Document(io.BytesIO(data))
            notes = footnotes(data)
        except SkippedFile:
            raise
        except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise many types on damaged input
            raise SkippedFile(f"not a readable Word .docx file ({type(exc).__name__}: {str(exc)[:120]})") from exc
        lines: list[str] = []
        blocks: list[Block] = []
        boxes: list[str] = []  # after the body, so line numbers stay Word's paragraph numbers
        tables = 0
        for element in document.element.body.iterchildren():
            boxes += text_boxes(element)
            if element.tag == qn("w:p"):
                paragraph = Paragraph(element, document)
                lines.append(tidy(paragraph.text))
                if lines[-1]:
                    blocks.append(Block(lines[-1], len(lines), level=heading_level(paragraph)))
            elif element.tag == qn("w:tbl"):
                tables += 1
                table = Table(element, document)
                rows = [row_cells(row) for row in table.rows]
                header = " | ".join(rows[0]) if len(rows) > 1 else None
                for number, cells in enumerate(rows, start=1):
                    lines.append(" | ".join(cells))
                    if number > 1 or header is None:
                        where = {"table": tables, "row": number}
                        blocks.append(Block(lines[-1], len(lines), where=where, context=header))
        for number, text in enumerate(boxes, start=1):
            lines.append(text)
            blocks.append(Block(text, len(lines), where={"text_box": number}))
        for number, text in notes:
            lines.append(text)
            blocks.append(Block(text, len(lines), where={"footnote": int(number)}))
        core = document.core_properties
        meta = {"title": tidy(core.title or ""), "publisher": credible_author(core.author or "")}
        if core.created is not None:
            meta["date"] = core.created.date().isoformat()
        dropped = (f"{entities} undefined XML entit{'y' if entities == 1 else 'ies'} left out (the text around kept)",)
        return Extraction(
            [lines],
            [b for b in blocks if b.text],
            {k: v for k, v in meta.items() if v},
            encoding="docx",
            notes=dropped if entities else (),
        )
