"""Excel .xlsx through openpyxl, read-only and with the values Excel last calculated (not the formulas): each
worksheet is a page and each row a line numbered as Excel numbers it, so a citation names the sheet and the
row; a row is one passage whose cells are named by the sheet's header row ("姓名: 张三; 年龄: 35") when it
has one (tabular.py decides which row that is), with the sheet's name as context. Dates read as ISO dates,
numbers as Excel shows them in General format, percentages with their sign; charts, pictures and comments
are not read."""

from __future__ import annotations

import io
import re
import warnings
from datetime import date, datetime, time, timedelta

from .base import Block, Extraction, Reader, SkippedFile, credible_author, open_zip, tidy
from .legacy import OLE2, ole2_reason
from .tabular import MAX_ROWS, row_text, row_texts

MAX_COLUMNS = 1024  # a row is read no further (Excel allows 16,384; a styled empty cell far right pads a row)
PICTURE = re.compile(r"^=DISPIMG\(")  # WPS stores a picture placed in a cell as this formula text

# openpyxl warns about what it does not read (data validation, conditional formatting, default styles).
warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")


def number(value: int | float) -> str:
    """A number as Excel's General format shows it: no trailing ".0", at most 15 significant digits."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    return str(value)


def clock(value: time | datetime) -> str:
    return value.strftime("%H:%M" if value.second == 0 and value.microsecond == 0 else "%H:%M:%S")


def cell_text(value: object, number_format: str) -> str:
    """A cell's value as a line of text: dates as ISO dates (with the time when there is one)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() + ("" if value.time() == time() else f" {clock(value)}")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return clock(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, int | float):
        return f"{number(value * 100)}%" if number_format.endswith("%") else number(value)
    text = tidy(str(value))
    return "" if PICTURE.match(text) else text


def sheet_rows(sheet) -> list[tuple[int, list[str]]]:
    """(Excel row number, cell texts) of a worksheet's non-empty rows, the first MAX_ROWS rows only."""
    sheet.reset_dimensions()  # the declared size may say A1:XFD1048576: read what the sheet holds instead
    rows = []
    for number, row in enumerate(sheet.iter_rows(min_row=1, min_col=1), start=1):
        if number > MAX_ROWS:
            break
        cells = [cell_text(cell.value, cell.number_format) for cell in row[:MAX_COLUMNS]]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append((number, cells))
    return rows


class XlsxReader(Reader):
    name = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and re.search(rb"PK\x03\x04[\s\S]{26}xl/", head) is not None

    def read(self, data: bytes, name: str) -> Extraction:
        if data.startswith(OLE2):
            raise SkippedFile(ole2_reason(data, name))
        open_zip(data, "Excel")  # refuse a bomb before openpyxl unpacks anything
        import openpyxl  # here, not at the top: only a corpus with workbooks needs it

        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheets = [(sheet.title, sheet_rows(sheet)) for sheet in workbook.worksheets]
                properties = workbook.properties
            finally:
                workbook.close()
        except Exception as exc:  # noqa: BLE001 - openpyxl, zipfile and lxml raise many types on damaged input
            raise SkippedFile(f"not a readable Excel .xlsx file ({type(exc).__name__}: {str(exc)[:120]})") from exc
        pages: list[list[str]] = []
        blocks: list[Block] = []
        for page, (title, rows) in enumerate(sheets, start=1):
            lines = [""] * (rows[-1][0] if rows else 0)
            for (number, cells), text in zip(rows, row_texts([cells for _, cells in rows]), strict=True):
                lines[number - 1] = text or row_text(cells, None)  # the header row: a line, not a passage
                if text:
                    where = {"page": page, "sheet": title, "row": number}
                    blocks.append(Block(text, number, where=where, context=tidy(title) or None))
            pages.append(lines)
        meta = {"title": tidy(properties.title or ""), "publisher": credible_author(properties.creator or "")}
        if properties.created is not None:
            meta["date"] = properties.created.date().isoformat()
        meta = {k: v for k, v in meta.items() if v}
        return Extraction(pages, blocks, meta, unit="page", encoding="xlsx")
