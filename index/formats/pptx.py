"""PowerPoint .pptx through python-pptx: each slide is a page (a citation's page is the slide's number), its
title a heading and so the section of what follows, then the paragraphs of its other shapes in the order the
slide stores them (grouped shapes included), one passage per table row with the header row as context, and the
speaker notes after the slide's body. Footer, date and slide-number placeholders are left out (the same on
every slide); pictures, charts and SmartArt carry no text that is read."""

from __future__ import annotations

import io
import re

from .base import Block, Extraction, Reader, SkippedFile, credible_author, open_zip, tidy
from .legacy import OLE2, ole2_reason


def shapes_of(shapes) -> list:
    """The shapes of a slide in its order, a group's shapes in place of the group; footers, dates, slide
    numbers and headers (repeated on every slide) left out."""
    from pptx.enum.shapes import PP_PLACEHOLDER
    from pptx.shapes.group import GroupShape

    repeated = {PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.HEADER}
    found = []
    for shape in shapes:
        if isinstance(shape, GroupShape):
            found += shapes_of(shape.shapes)
        elif not (shape.is_placeholder and shape.placeholder_format.type in repeated):
            found.append(shape)
    return found


def row_cells(row) -> list[str]:
    """A table row's cell texts, a merged cell counted once."""
    return [tidy(cell.text) for cell in row.cells if not cell.is_spanned]


def slide_text(slide, page: int) -> tuple[list[str], list[Block]]:
    """Lines and blocks of one slide: title, shapes, tables, then the speaker notes."""
    lines: list[str] = []
    blocks: list[Block] = []

    def add(text: str, **kwargs) -> None:
        lines.append(text)
        if text:
            blocks.append(Block(text, len(lines), **kwargs))

    title = slide.shapes.title
    if title is not None:
        add(tidy(title.text_frame.text), level=2, where={"page": page})
    tables = 0
    for shape in shapes_of(slide.shapes):
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if shape.has_text_frame:
            for paragraph in shape.text_frame.paragraphs:
                if text := tidy(paragraph.text):
                    add(text, where={"page": page})
        elif shape.has_table:
            tables += 1
            rows = [row_cells(row) for row in shape.table.rows]
            header = " | ".join(rows[0]) if len(rows) > 1 else None
            for number, cells in enumerate(rows, start=1):
                if number == 1 and header is not None:
                    lines.append(header)
                else:
                    add(" | ".join(cells), where={"page": page, "table": tables, "row": number}, context=header)
    notes = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    for paragraph in notes.paragraphs if notes is not None else ():
        if text := tidy(paragraph.text):
            add(text, where={"page": page, "notes": True})
    return lines, blocks


class PptxReader(Reader):
    name = "pptx"
    suffixes = (".pptx",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and re.search(rb"PK\x03\x04[\s\S]{26}ppt/", head) is not None

    def read(self, data: bytes, name: str) -> Extraction:
        if data.startswith(OLE2):
            raise SkippedFile(ole2_reason(data, name))
        open_zip(data, "PowerPoint")  # refuse a bomb before python-pptx unpacks anything
        pages: list[list[str]] = []
        blocks: list[Block] = []
        import pptx  # here, not at the top: 0.3 s that only a corpus with slides needs

        try:
            presentation = pptx.Presentation(io.BytesIO(data))
            for page, slide in enumerate(presentation.slides, start=1):
                lines, found = slide_text(slide, page)
                pages.append(lines)
                blocks += found
            core = presentation.core_properties
        except Exception as exc:  # noqa: BLE001 - python-pptx and lxml raise many types on damaged input
            raise SkippedFile(f"not a readable PowerPoint .pptx file ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if not blocks:
            raise SkippedFile("no text on its slides (pictures only? their text needs OCR)")
        meta = {"title": tidy(core.title or ""), "publisher": credible_author(core.author or "")}
        if core.created is not None:
            meta["date"] = core.created.date().isoformat()
        meta = {k: v for k, v in meta.items() if v}
        return Extraction(pages, blocks, meta, unit="page", encoding="pptx")
