"""index.formats for office files: PowerPoint, Excel, CSV/TSV, OpenDocument text and the old binary formats,
on real files from public parser test suites (../shared/realdocs) and on small files made here, checking the
page, sheet, row and line that citations name, the header a row is read with, and the reason a file is refused."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pptx
import pytest
from pptx.util import Inches
from wenda.bot.render import location
from wenda.index.chunking import paragraphs_of
from wenda.index.config import ChunkingParams
from wenda.index.formats import SUFFIXES, SkippedFile, reader_for
from wenda.index.formats.base import Extraction
from wenda.index.formats.legacy import OLE2, LegacyReader, stream
from wenda.index.formats.odt import OdtReader
from wenda.index.formats.pptx import PptxReader
from wenda.index.formats.tabular import TabularReader
from wenda.index.formats.xlsx import XlsxReader
from wenda.index.store import ChunkRecord

REALDOCS = Path(__file__).resolve().parents[2] / "shared" / "realdocs"


def read(name: str, data: bytes) -> Extraction:
    """Through the reader that the loader would pick."""
    return reader_for(name, data[:4096]).read(data, name)


def real(name: str) -> Extraction:
    return read(name, (REALDOCS / name).read_bytes())


def plain(text: str) -> str:
    """Text without whitespace and cell bars, as tests/test_formats.py compares a table row with a fact."""
    return re.sub(r"[\s|]+", "", text)


def cited(extraction: Extraction, text: str, verbatim: bool = True):
    """The one block holding `text`, checked to be verbatim at its unit and line of the extracted text (a CSV
    row's lines are the file's own: each of its values is there)."""
    blocks = [block for block in extraction.blocks if text in block.text]
    assert len(blocks) == 1, (text, blocks)
    block = blocks[0]
    lines = "\n".join(extraction.lines_of(block.unit)[block.line - 1 : block.line - 1 + block.lines])
    if verbatim:
        assert block.text in lines or plain(block.text) in plain(lines)
    else:
        values = [value.split(": ", 1)[-1] for value in block.text.split("; ")]
        assert all(plain(value) in plain(lines) for value in values), (values, lines)
    return block


def where_words(**where) -> str:
    record = ChunkRecord(1, "x", 1, 1, None, "t", None, None, None, 0, 1, "x", locator_json=json.dumps(where))
    return location(record)


def ole2(*streams: str) -> bytes:
    """The start of an OLE2 compound file whose directory names these streams (enough for the sniff)."""
    return OLE2 + b"\x00" * 504 + b"".join(stream(name).ljust(128, b"\x00") for name in streams)


def bomb(name: str) -> bytes:
    """A zip whose one member unpacks to 8 MB of zeros from a few KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, b"\x00" * (8 << 20))
    return buffer.getvalue()


# --- PowerPoint ---


def test_real_pptx_slide_is_a_page_its_title_the_section_and_table_rows_carry_their_header() -> None:
    extraction = real("unstructured-fake-power-point-table.pptx")
    assert extraction.unit == "page" and len(extraction.pages) == 1
    title = cited(extraction, "A Slide with a Table")
    assert title.level == 2 and title.where == {"page": 1}
    row = cited(extraction, "Tangerine")
    assert row.text == "Tangerine | Pink | Aqua" and row.context == "Column 1 | Column 2 | Column 3"
    assert row.where == {"page": 1, "table": 1, "row": 4}
    paragraph = next(p for p in paragraphs_of(extraction, ChunkingParams()) if "Tangerine" in p.text)
    assert paragraph.section == "A Slide with a Table › Column 1 | Column 2 | Column 3"
    assert not any("Column 1" == block.text for block in extraction.blocks)  # the header row is context only


def make_deck() -> bytes:
    deck = pptx.Presentation()
    deck.core_properties.title = "清河市交通规划汇报"
    deck.core_properties.author = "清河市交通局"
    first = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    first.shapes.title.text = "一、现状"
    body = first.placeholders[1].text_frame
    body.text = "全市公交线路 128 条"
    body.add_paragraph().text = "日均客流 56 万人次"
    first.notes_slide.notes_text_frame.text = "讲稿：客流数据来自 2023 年统计公报"
    second = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    group = second.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "分组里的文字：地铁 3 号线 2026 年通车"
    third = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    third.shapes.title.text = "二、投资"
    table = third.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, cells in enumerate([("项目", "投资（亿元）"), ("地铁", "86.5"), ("公交场站", "4.2")]):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def test_pptx_slides_shapes_groups_tables_and_notes_are_cited_by_slide() -> None:
    extraction = read("deck.pptx", make_deck())
    assert extraction.unit == "page" and len(extraction.pages) == 3
    assert extraction.meta["title"] == "清河市交通规划汇报" and extraction.meta["publisher"] == "清河市交通局"
    assert cited(extraction, "日均客流56万人次").where == {"page": 1}
    notes = cited(extraction, "客流数据来自")
    assert notes.where == {"page": 1, "notes": True}
    assert notes.line > cited(extraction, "日均客流").line  # after the slide's body
    assert cited(extraction, "地铁3号线").where == {"page": 2}
    row = cited(extraction, "公交场站")
    assert row.text == "公交场站 | 4.2" and row.context == "项目 | 投资（亿元）"
    assert row.where == {"page": 3, "table": 1, "row": 3}
    paragraphs = paragraphs_of(extraction, ChunkingParams(), extraction.meta["title"])
    assert next(p for p in paragraphs if "日均客流" in p.text).section == "一、现状"
    assert next(p for p in paragraphs if "公交场站" in p.text).section == "二、投资 › 项目 | 投资（亿元）"
    assert where_words(**notes.where) == "第1页备注"


def test_pptx_without_text_is_refused_and_a_renamed_one_is_still_found() -> None:
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])
    buffer = io.BytesIO()
    deck.save(buffer)
    with pytest.raises(SkippedFile, match="no text on its slides"):
        PptxReader().read(buffer.getvalue(), "blank.pptx")
    data = (REALDOCS / "unstructured-fake-power-point-table.pptx").read_bytes()
    assert reader_for("slides.zip", data[:4096]).name == "pptx"


# --- Excel ---


def test_real_xlsx_each_sheet_is_a_page_and_each_row_names_its_cells_by_the_header() -> None:
    extraction = real("mineru-xlsx_01.xlsx")
    assert extraction.unit == "page" and len(extraction.pages) == 4
    row = cited(extraction, "hyperlink")
    assert row.text == "first 123: 21; second 123: hyperlink"
    assert row.where == {"page": 1, "sheet": "Sheet1", "row": 8} and row.line == 8 and row.context == "Sheet1"
    assert cited(extraction, "third 123: -6").where["row"] == 7
    assert extraction.lines_of(1)[0] == "first 123 | second 123 | third 123"  # the header: a line, no passage
    assert not any("DISPIMG" in block.text for block in extraction.blocks)  # a picture in a cell (WPS)
    assert [b.text for b in extraction.blocks if b.unit == 4] == ["header", "1"]  # one column: no header
    assert extraction.meta == {"publisher": "Peter Staar", "date": "2024-11-20"}


def test_encrypted_xlsx_is_refused_as_password_protected_not_as_an_old_file() -> None:
    data = (REALDOCS / "unstructured-password_protected.xlsx").read_bytes()
    with pytest.raises(SkippedFile, match="^the workbook is password-protected .*save an unprotected copy"):
        XlsxReader().read(data, "unstructured-password_protected.xlsx")
    with pytest.raises(SkippedFile, match="^the workbook is password-protected"):
        real("unstructured-password_protected.xlsx")
    with pytest.raises(SkippedFile, match="^the document is password-protected"):
        read("report.docx", data)


def make_workbook() -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    sales = workbook.active
    sales.title = "销售"
    sales.append(["2024年一季度销售表"])  # a title row above the header
    sales.append(["日期", "产品", "数量", "单价", "占比", "签收"])
    sales.append([date(2024, 3, 1), "苹果", 3.0, 2.5, 0.125, True])
    sales.append([datetime(2024, 3, 2, 9, 30), "梨", 12, 0.1 + 0.2, 0.5, False])
    for row in (3, 4):
        sales.cell(row, 5).number_format = "0.0%"
    workbook.create_sheet("空表")
    notes = workbook.create_sheet("说明")
    notes["B2"] = "数据来自门店日报"
    return workbook


def xlsx_bytes(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_rows_cite_sheet_and_row_and_read_dates_numbers_and_percentages() -> None:
    extraction = read("sales.xlsx", xlsx_bytes(make_workbook()))
    assert [len(page) for page in extraction.pages] == [4, 0, 2]  # an empty sheet keeps its page number
    apple = cited(extraction, "苹果")
    assert apple.text == "日期: 2024-03-01; 产品: 苹果; 数量: 3; 单价: 2.5; 占比: 12.5%; 签收: TRUE"
    assert apple.where == {"page": 1, "sheet": "销售", "row": 3} and apple.line == 3 and apple.context == "销售"
    pear = cited(extraction, "梨")
    assert pear.text == "日期: 2024-03-02 09:30; 产品: 梨; 数量: 12; 单价: 0.3; 占比: 50%; 签收: FALSE"
    title = cited(extraction, "2024年一季度销售表")
    assert title.where["row"] == 1 and title.context == "销售"
    assert cited(extraction, "数据来自门店日报").where == {"page": 3, "sheet": "说明", "row": 2}
    assert where_words(**apple.where) == "工作表«销售»第3行"
    paragraph = next(p for p in paragraphs_of(extraction, ChunkingParams()) if "苹果" in p.text)
    assert paragraph.section == "销售" and paragraph.where == apple.where


def test_citation_words_for_existing_places_are_unchanged() -> None:
    assert where_words(page=3, table=1, row=4) == "第3页表1第4行"
    assert where_words(chapter=2) == "第2章" and where_words(footnote=2) == "脚注2" and where_words() == ""


def test_empty_workbook_gives_no_passages_for_the_builder_to_skip() -> None:
    extraction = XlsxReader().read(xlsx_bytes(openpyxl.Workbook()), "empty.xlsx")
    assert extraction.blocks == [] and extraction.pages == [[]]


def test_xlsx_with_a_lying_size_and_too_many_rows_is_read_as_far_as_the_cap(monkeypatch) -> None:
    import wenda.index.formats.xlsx as xlsx

    workbook = openpyxl.Workbook()
    for number in range(1, 21):
        workbook.active.append([f"第{number}行", number])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(workbook))) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():  # claim the whole sheet: A1:XFD1048576
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', data)
            target.writestr(item, data)
    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)
    extraction = XlsxReader().read(buffer.getvalue(), "big.xlsx")
    assert [block.text for block in extraction.blocks] == [f"第{n}行 | {n}" for n in range(1, 6)]


@pytest.mark.parametrize("reader, name", [(XlsxReader(), "xl/workbook.xml"), (PptxReader(), "ppt/x.xml")])
def test_office_zip_bombs_are_refused_before_parsing(reader, name: str) -> None:
    with pytest.raises(SkippedFile, match="decompression bomb"):
        reader.read(bomb(name), "bomb")


# --- CSV and TSV ---

CITIES = "城市,常住人口（万人）,面积（平方公里）\n北京,2185.8,16410\n上海,2487.1,6341\n广州,1882.7,7434\n"


def test_gbk_csv_rows_name_their_cells_and_cite_the_file_line() -> None:
    extraction = read("cities.csv", CITIES.encode("gbk"))
    assert extraction.encoding == "gb18030" and extraction.unit is None
    shanghai = cited(extraction, "上海", verbatim=False)
    assert shanghai.text == "城市: 上海; 常住人口（万人）: 2487.1; 面积（平方公里）: 6341"
    assert shanghai.where == {"row": 3} and shanghai.line == 3
    assert extraction.lines_of(0)[2] == "上海,2487.1,6341"  # `wenda show` prints the file's own line
    assert len(extraction.blocks) == 3  # the header is no passage


def test_tsv_with_commas_in_cells_and_a_semicolon_csv_with_a_multiline_cell() -> None:
    tsv = read("fruit.tsv", "产品\t说明\n苹果\t红色, 甜, 脆\n梨\t黄色\n".encode())
    assert cited(tsv, "苹果", verbatim=False).text == "产品: 苹果; 说明: 红色,甜,脆"  # tidy: no space by CJK
    source = '编号;事项;负责人\n1;"道路养护\n（含桥梁）";王强\n2;绿化;李娜\n'
    extraction = read("tasks.csv", source.encode())
    first = cited(extraction, "王强", verbatim=False)
    assert first.text == "编号: 1; 事项: 道路养护（含桥梁）; 负责人: 王强"
    assert (first.line, first.lines, first.where) == (2, 2, {"row": 2})
    second = cited(extraction, "李娜", verbatim=False)
    assert (second.line, second.lines, second.where) == (4, 1, {"row": 3})


def test_csv_title_rows_stand_above_the_header_and_numbers_are_no_header() -> None:
    extraction = read("t.csv", "2024年统计\n\n地区,人数\n东区,5\n".encode())
    assert [(b.text, b.line) for b in extraction.blocks] == [("2024年统计", 1), ("地区: 东区; 人数: 5", 4)]
    numbers = read("n.csv", b"1,2\n3,4\n")
    assert [b.text for b in numbers.blocks] == ["1 | 2", "3 | 4"]


def test_hostile_csv_is_refused_with_the_line_or_read_without_nul() -> None:
    huge = b'a,b\n1,"' + b"x" * 200_000 + b'"\n2,3\n'
    with pytest.raises(SkippedFile, match="not a readable table at line 2 .*field larger than field limit"):
        TabularReader().read(huge, "huge.csv")
    with pytest.raises(SkippedFile, match="binary"):
        TabularReader().read(b"a,b\n1,\x002\n", "nul.csv")
    late = ("名称,值\n" + "甲,1\n" * 3000 + "乙,\x002\n").encode()
    rows = TabularReader().read(late, "late-nul.csv").blocks
    assert rows[-1].text == "名称: 乙; 值: 2" and not any("\x00" in b.text for b in rows)


# --- OpenDocument text ---


def test_real_odt_table_row_holds_the_fact_with_its_header_as_context() -> None:
    extraction = real("unstructured-fake.odt")
    evidence = "Leader Sarah Mark Ryan"  # FACTS.tsv: "Who are listed as leaders in the schedule table?"
    row = next(block for block in extraction.blocks if plain(evidence) in plain(block.text))
    assert row.text == "Leader | Sarah | Mark | Ryan" and row.context == "Header row | Mon | Wed | Fri"
    assert row.where == {"table": 1, "row": 4} and extraction.lines_of(0)[row.line - 1] == row.text
    assert cited(extraction, "Lorem ipsum dolor sit amet.").where == {}
    assert extraction.meta == {"date": "2023-05-04"}
    data = (REALDOCS / "unstructured-fake.odt").read_bytes()
    assert reader_for("fake.zip", data[:4096]).name == "odt"


ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><office:body><office:text>
<text:tracked-changes><text:changed-region text:id="c1"><text:deletion>
 <text:p>已删除的旧条款</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:h text:outline-level="1">清河市供水条例</text:h>
<text:h text:outline-level="2">第一章 总则</text:h>
<text:p>第一条<text:s text:c="3"/>为了保障供水安全，<text:span>制定本条例</text:span>。<office:annotation>
 <dc:creator>审稿人</dc:creator><text:p>批注不是正文</text:p></office:annotation></text:p>
<text:p>Water<text:tab/>supply<text:line-break/>rules<text:note text:note-class="footnote">
 <text:note-citation>1</text:note-citation><text:note-body><text:p>脚注：依据国务院令第158号。</text:p>
 </text:note-body></text:note></text:p>
<text:list><text:list-item><text:p>一、水源保护</text:p></text:list-item>
 <text:list-item><text:list><text:list-item><text:p>（一）取水口</text:p></text:list-item></text:list>
 </text:list-item></text:list>
<text:p><draw:frame><draw:text-box><text:p>文本框：咨询电话12345</text:p></draw:text-box></draw:frame></text:p>
<table:table><table:table-header-rows><table:table-row>
 <table:table-cell><text:p>水厂</text:p></table:table-cell><table:table-cell><text:p>日供水（万吨）</text:p>
 </table:table-cell><table:table-cell table:number-columns-repeated="1000"/></table:table-row>
 </table:table-header-rows><table:table-row><table:table-cell><text:p>北郊水厂</text:p></table:table-cell>
 <table:table-cell><text:p>45</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1000"/>
 </table:table-row></table:table>
</office:text></office:body></office:document-content>"""
ODT_META = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<office:meta><dc:title>清河市供水条例</dc:title><meta:initial-creator>清河市水务局</meta:initial-creator>
<meta:creation-date>2024-05-10T09:00:00</meta:creation-date></office:meta></office:document-meta>"""


def odt_bytes(content: str, mimetype: bytes = b"application/vnd.oasis.opendocument.text") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored, first, as ODF requires
        archive.writestr("content.xml", content)
        archive.writestr("meta.xml", ODT_META)
    return buffer.getvalue()


def test_odt_headings_lists_spaces_notes_text_boxes_and_tables() -> None:
    extraction = read("regulation.odt", odt_bytes(ODT_CONTENT))
    texts = [block.text for block in extraction.blocks]
    assert texts[:3] == ["清河市供水条例", "第一章总则", "第一条为了保障供水安全，制定本条例。"]
    assert [b.level for b in extraction.blocks[:3]] == [1, 2, None]
    assert "Water supply rules" in texts and "（一）取水口" in texts
    assert not any("已删除" in text or "批注" in text for text in texts)
    assert cited(extraction, "咨询电话12345").where == {"text_box": 1}
    note = cited(extraction, "国务院令第158号")
    assert note.where == {"footnote": 1} and note.line > cited(extraction, "咨询电话").line
    row = cited(extraction, "北郊水厂")
    assert row.text == "北郊水厂 | 45" and row.context == "水厂 | 日供水（万吨）"
    assert row.where == {"table": 1, "row": 2}
    paragraphs = paragraphs_of(extraction, ChunkingParams(), extraction.meta["title"])
    assert next(p for p in paragraphs if "北郊水厂" in p.text).section == "第一章总则 › 水厂 | 日供水（万吨）"
    assert extraction.meta == {"title": "清河市供水条例", "publisher": "清河市水务局", "date": "2024-05-10"}


def test_odt_refuses_a_spreadsheet_a_bomb_and_broken_xml() -> None:
    with pytest.raises(SkippedFile, match="not an OpenDocument text but .*spreadsheet"):
        OdtReader().read(odt_bytes(ODT_CONTENT, b"application/vnd.oasis.opendocument.spreadsheet"), "x.odt")
    with pytest.raises(SkippedFile, match="content.xml is not well-formed"):
        OdtReader().read(odt_bytes(ODT_CONTENT[:-40]), "x.odt")
    with pytest.raises(SkippedFile, match="decompression bomb"):
        OdtReader().read(bomb("content.xml"), "x.odt")


# --- old binary Office files ---


def test_real_doc_is_named_with_the_format_to_save_it_in() -> None:
    with pytest.raises(SkippedFile, match=r"^an old binary Word file \(\.doc\); save it as \.docx"):
        real("unstructured-fake.doc")
    data = (REALDOCS / "unstructured-fake.doc").read_bytes()
    with pytest.raises(SkippedFile, match=r"Word file \(\.doc, named \.xls\)"):
        read("misnamed.xls", data)


@pytest.mark.parametrize(
    "name, streams, reason",
    [
        ("slides.ppt", ("PowerPoint Document",), r"old binary PowerPoint file \(\.ppt\); save it as \.pptx"),
        ("table.xls", ("Workbook",), r"old binary Excel file \(\.xls\); save it as \.xlsx"),
        ("table.xlsx", ("Workbook",), r"old binary Excel file \(\.xls, named \.xlsx\)"),
        ("deck.pptx", ("EncryptionInfo", "EncryptedPackage"), "^the presentation is password-protected"),
        ("notes.txt", (), r"old binary Office file \(OLE2\)"),
    ],
)
def test_ole2_files_are_told_apart_by_their_streams_then_their_suffix(name: str, streams: tuple, reason: str) -> None:
    assert reader_for(name, ole2(*streams)).name == "legacy"
    with pytest.raises(SkippedFile, match=reason):
        read(name, ole2(*streams))


def test_a_legacy_name_without_an_ole2_header() -> None:
    with pytest.raises(SkippedFile, match="Rich Text .*save it as .docx"):
        LegacyReader().read(b"{\\rtf1\\ansi hello}", "letter.doc")
    with pytest.raises(SkippedFile, match="not an old Excel file"):
        LegacyReader().read(b"garbage", "x.xls")


# --- picking the reader ---


def test_new_suffixes_are_found_and_word_files_are_still_word() -> None:
    for suffix in (".pptx", ".xlsx", ".xlsm", ".csv", ".tsv", ".odt", ".doc", ".ppt", ".xls"):
        assert suffix in SUFFIXES
    assert reader_for("a.csv", b"x,y\n").name == "csv" and reader_for("a.odt", b"").name == "odt"
    docx = (REALDOCS / "mineru-docx_01.docx").read_bytes()[:4096]
    assert reader_for("renamed.zip", docx).name == "docx" and reader_for("a.docx", docx).name == "docx"
    xlsx = (REALDOCS / "mineru-xlsx_01.xlsx").read_bytes()[:4096]
    assert reader_for("renamed.zip", xlsx).name == "xlsx"
