"""index.formats: each reader on real files (tests/fixtures/documents, made with reportlab, python-docx, …):
known facts come out whole, at a locator that an independent extraction confirms; bad files are refused
with a reason."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import docx
import pdfplumber
import pytest
from conftest import run_wenda
from wenda.index.chunking import paragraphs_of
from wenda.index.config import ChunkingParams
from wenda.index.formats import BY_NAME, SkippedFile, reader_for
from wenda.index.formats.base import Extraction

DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"
FACTS = json.loads((DOCUMENTS / "facts.json").read_text(encoding="utf-8"))


def extract(name: str) -> Extraction:
    data = (DOCUMENTS / name).read_bytes()
    return reader_for(name, data[:4096]).read(data, name)


def bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def plain(text: str) -> str:
    """Text without whitespace, cell bars and hyphens: what a table row or a re-joined line break may change."""
    return re.sub(r"[\s|\-]+", "", text)


def independent_text(name: str, where: dict) -> str:
    """The text at `where` as another tool (or the raw file) gives it, whitespace removed."""
    path = DOCUMENTS / name
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        with pdfplumber.open(path) as pdf:
            page = pdf.pages[where["page"] - 1]
            halves = [
                page.crop((0, 0, page.width / 2, page.height)),
                page.crop((page.width / 2, 0, page.width, page.height)),
            ]
            return bare(page.extract_text() + "".join(half.extract_text() for half in halves))
    if name.endswith(".docx"):
        document = docx.Document(path)
        if "table" in where:
            row = document.tables[where["table"] - 1].rows[where["row"] - 1]
            return bare("".join(cell.text for cell in row.cells))
        if "footnote" in where:
            return bare(re.sub(r"<[^>]+>", "", zipfile.ZipFile(path).read("word/footnotes.xml").decode("utf-8")))
        return bare(document.paragraphs[where["paragraph"] - 1].text)
    if name.endswith(".epub"):
        archive = zipfile.ZipFile(path)
        chapters = sorted(n for n in archive.namelist() if re.search(r"chap\w*\d", n))
        return bare(re.sub(r"<[^>]+>", "", archive.read(chapters[where["chapter"] - 1]).decode("utf-8")))
    if name.endswith(".html"):
        charset = "gb2312" if b"gb2312" in data[:2000].lower() else "utf-8"
        return bare(re.sub(r"<[^>]+>", "", data.decode(charset)))
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le" if b"\x00" in data else "utf-8"
    return bare(data.decode(encoding))


@pytest.mark.parametrize("fact", FACTS, ids=[f"{f['file']}:{f['fact']}" for f in FACTS])
def test_each_fact_is_whole_in_one_block_at_a_checkable_place(fact: dict) -> None:
    extraction = extract(fact["file"])
    blocks = [b for b in extraction.blocks if fact["fact"] in b.text]
    assert blocks, f"{fact['fact']} not whole in any block of {fact['file']}"
    block = blocks[0]
    # the block is verbatim in its lines of the extracted text (what `wenda show` prints; a table row's cells
    # are joined by " | ", a wrapped paragraph's lines without their breaks) …
    lines = extraction.lines_of(block.unit)[block.line - 1 : block.line - 1 + block.lines]
    assert plain(block.text) in plain("".join(lines))
    # … in the right page, chapter, table row or footnote …
    for key in ("page", "chapter", "table", "row", "footnote"):
        if key in fact["where"]:
            assert block.where.get(key) == fact["where"][key], (key, block.where)
    # … and another extraction of that place holds the fact too
    assert bare(fact["fact"]) in independent_text(fact["file"], fact["where"])


def test_pdf_running_header_footer_and_page_numbers_are_not_in_passages() -> None:
    extraction = extract("report.pdf")
    assert extraction.unit == "page" and len(extraction.pages) == 3
    for block in extraction.blocks:
        assert "清河市人民政府工作报告" not in block.text
        assert not re.fullmatch(r"[—\-\s\d]+", block.text)
    assert extraction.meta == {
        "title": "清河市二〇二四年政府工作报告",
        "publisher": "清河市人民政府",
        "date": "2024-02-01",
    }


def test_pdf_words_hyphenated_at_a_line_end_are_joined() -> None:
    text = " ".join(block.text for block in extract("report.pdf").blocks)
    assert "Public-Private Partnership" in text and "Partner-" not in text


def test_two_column_pdf_reads_each_column_in_order() -> None:
    extraction = extract("two-column.pdf")
    text = "".join(block.text for block in extraction.blocks)
    # a paragraph of the left column is whole, and comes before the right column's first heading
    assert text.index("东港码头年吞吐量达到3150万吨") < text.index("城市建设")
    assert "滨江大道改造工程投资8.6亿元" in text


@pytest.mark.parametrize(
    "name, reason",
    [
        ("encrypted.pdf", "encrypted"),
        ("truncated.pdf", "truncated or damaged"),
        ("bomb.docx", "decompression bomb"),
    ],
)
def test_unusable_documents_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(SkippedFile, match=reason):
        extract(name)


def test_content_decides_the_format_not_the_name() -> None:
    data = (DOCUMENTS / "renamed-pdf.txt").read_bytes()
    assert reader_for("renamed-pdf.txt", data[:4096]).name == "pdf"
    assert reader_for("x.png", (DOCUMENTS / "article.html").read_bytes()[:4096]).name == "html"


def test_docx_headings_become_sections_and_table_rows_carry_their_header() -> None:
    extraction = extract("notice.docx")
    paragraphs = paragraphs_of(extraction, ChunkingParams(), "关于加强城市供水安全管理的通知")
    row = next(p for p in paragraphs if "北郊水厂" in p.text)
    assert row.text == "北郊水厂 | 45 | 2019" and row.where == {"table": 1, "row": 4}
    assert row.section == "二、加强水厂运行管理 › 水厂 | 日供水能力（万吨） | 投运年份"
    assert extraction.meta == {
        "title": "关于加强城市供水安全管理的通知",
        "publisher": "清河市水务局",
        "date": "2024-05-10",
    }


def test_html_keeps_the_article_not_the_menus_ads_comments_or_related_links() -> None:
    extraction = extract("article.html")
    text = "".join(block.text for block in extraction.blocks)
    assert "首条有轨电车线路全长18.6公里" in text
    for decoy in ("9800元", "票价应该是5元", "全长24.5公里", "ICP"):
        assert decoy not in text
    assert extraction.meta["title"] == "清河市首条有轨电车线路今日开通运营"
    assert extraction.meta["publisher"] == "清河日报" and extraction.meta["date"] == "2024-06-18"
    assert extraction.meta["url"].startswith("https://")


def test_html_in_gb2312_is_decoded() -> None:
    assert any("今年新增城市绿道126公里" in block.text for block in extract("gb2312.html").blocks)


def test_epub_chapters_are_units_and_their_titles_sections() -> None:
    extraction = extract("book.epub")
    paragraphs = paragraphs_of(extraction, ChunkingParams(), extraction.meta["title"])
    fact = next(p for p in paragraphs if "明嘉靖十二年" in p.text)
    assert fact.where == {"chapter": 2} and fact.section == "第二章古桥遗韵"
    assert extraction.meta == {"title": "清河风物志", "publisher": "清河市地方志办公室", "date": "2023-09-01"}


def test_markdown_headings_lose_their_markers_and_table_rows_are_passages() -> None:
    extraction = extract("guide.md")
    paragraphs = paragraphs_of(extraction, ChunkingParams(), "清河交通出行指南")
    assert not any(p.text.startswith(("#", "|", "---")) for p in paragraphs)
    row = next(p for p in paragraphs if "清河东站" in p.text and "|" in p.text)
    assert not row.heading and row.section.endswith("车站 | 类型 | 投入使用")
    assert (DOCUMENTS / "guide.md").read_text(encoding="utf-8").split("\n")[row.line - 1].count("清河东站") == 1
    code = next(p for p in paragraphs if p.text.startswith("curl "))
    assert not code.heading


def test_markdown_code_is_verbatim_and_never_a_heading() -> None:
    source = "# 标题\n\n正文一段。\n\n```\n短代码\n```\n\n| a | b |\n|---|---|\n| 甲 | 乙 |\n"
    extraction = reader_for("x.md", b"").read(source.encode("utf-8"), "x.md")
    paragraphs = paragraphs_of(extraction, ChunkingParams(), None)
    assert [(p.text, p.heading) for p in paragraphs] == [
        ("标题", True),
        ("正文一段。", False),
        ("短代码", False),
        ("甲 | 乙", False),
    ]
    assert paragraphs[3].section == "标题 › a | b" and paragraphs[2].line == 6


def test_markdown_front_matter_is_metadata_not_text() -> None:
    """Jekyll/Hugo/Obsidian front matter gives the title, date, author and tags; its lines are not indexed
    (they had made "title: …" a heading over the whole file), and the text below keeps its line numbers."""
    head = '---\ntitle: 清河年报\ndate: 2023-05-01\nauthor: 统计局\ntags: [统计, 年报]\nkeywords: "经济, 统计"\n---\n'
    source = head + "\n正文一段。\n"
    extraction = reader_for("x.md", b"").read(source.encode("utf-8"), "x.md")
    assert extraction.meta == {
        "title": "清河年报",
        "date": "2023-05-01",
        "publisher": "统计局",
        "tags": ["统计", "年报", "经济"],
    }
    paragraphs = paragraphs_of(extraction, ChunkingParams(), "清河年报")
    assert [(p.text, p.line) for p in paragraphs] == [("正文一段。", 9)]
    assert extraction.lines_of(0)[1] == "title: 清河年报"  # `wenda show` still shows the file as it is
    # Not front matter: a thematic break, text, another break (no mapping between) stays text; a YAML alias
    # bomb or a nested value gives no metadata.
    plain = reader_for("y.md", b"").read("---\n正文。\n\n---\n".encode(), "y.md")
    assert plain.meta == {} and [b.text for b in plain.blocks] == ["正文。"]
    bomb = "---\na: &a [x, x]\nb: &b [*a, *a]\ntags: [*b, *b, 真]\ntitle: {nested: 1}\n---\n文。\n"
    assert reader_for("z.md", b"").read(bomb.encode(), "z.md").meta == {"tags": ["真"]}


def test_a_line_without_width_is_its_own_column() -> None:
    """A glyph drawn with an empty box (seen in real PDFs) once stopped the whole build with `max()` of nothing."""
    from wenda.index.formats.layout import Line, gutter, paragraphs

    lines = [Line("第一行，没有结束", 72.0, 520.0, 100.0, 112.0, 12.0), Line("。", 560.0, 560.0, 118.0, 118.0, 0.01)]
    lines.append(Line("下一段。", 72.0, 150.0, 136.0, 148.0, 12.0))
    assert sum(count for _, count in paragraphs(lines)) == 3
    assert gutter([{"x0": 0.0, "x1": 1.0, "top": 0.0}] * 12, width=1.0) is None  # a page too narrow for columns


def test_text_in_a_word_text_box_is_read_once() -> None:
    """A real file (mammoth's test suite) whose only text sits in a text box, which Word stores twice."""
    from wenda.index.formats.docx import DocxReader

    path = Path(__file__).resolve().parents[2] / "shared" / "realdocs" / "mammoth-text-box.docx"
    extraction = DocxReader().read(path.read_bytes(), path.name)
    assert [(block.text, block.where) for block in extraction.blocks] == [("Datum plane", {"text_box": 1})]


def test_big5_text_is_read_as_big5_not_gb18030_mojibake() -> None:
    """A real Big5 file (chardet's test suite); GB18030 would decode its bytes too, as private-use characters."""
    from wenda.index.formats.text import TextReader

    path = Path(__file__).resolve().parents[2] / "shared" / "realdocs" / "chardet-big5-ude_1.txt"
    extraction = TextReader().read(path.read_bytes(), path.name)
    text = "".join(block.text for block in extraction.blocks)
    assert extraction.encoding == "big5" and "文言維基始於丙戌年七夕" in text
    assert not any("\ue000" <= char <= "\uf8ff" for char in text)


def test_a_form_label_keeps_its_value_on_the_next_line() -> None:
    """A real form (pypdf's test suite): the label and its value are one passage, with a space between them."""
    path = Path(__file__).resolve().parents[2] / "shared" / "realdocs" / "pypdf-sf424-page2-form.pdf"
    texts = [block.text for block in reader_for(path.name, b"%PDF-").read(path.read_bytes(), path.name).blocks]
    assert "* 12. Funding Opportunity Number: MBL-SF424FAMILY-ALLFORMS" in texts


def test_a_small_web_page_keeps_the_headings_between_its_tables() -> None:
    """A real datasheet (unstructured's test suite, UTF-16): main-text extraction dropped the heading naming the
    grade; a page this small is all content."""
    from wenda.index.formats.html import HtmlReader

    path = Path(__file__).resolve().parents[2] / "shared" / "realdocs" / "unstructured-steeljis-datasheet-utf-16.html"
    extraction = HtmlReader().read(path.read_bytes(), path.name)
    assert any(block.text == "Mechanical properties of grade SNB22-3" for block in extraction.blocks)


def test_a_three_column_page_with_a_stamp_up_its_margin_reads_column_by_column() -> None:
    """The Federal Register's first page: three columns, each with its own baselines, and a filing stamp and a
    "PROPOSED RULES" banner set at 90° in the margins, whose letters had been mixed into the first column's rows."""
    name = "pdfplumber-federal-register-2020-17221.pdf"
    path = Path(__file__).resolve().parents[2] / "shared" / "realdocs" / name
    extraction = BY_NAME["pdf"].read(path.read_bytes(), name)
    first = [block.text for block in extraction.blocks if block.where["page"] == 1]
    assert (
        "This section of the FEDERAL REGISTER contains notices to the public of the proposed issuance of rules "
        "and regulations." in first[1]
    )
    assert any(text.endswith("• Fax: 202–493–2251.") for text in first)
    assert any("ACTION: Notice of proposed rulemaking (NPRM)." == text for text in first)
    assert not any(text.startswith(("S ", "O ", "P ")) for text in first)  # no banner letter opens a line


def with_entities(docx_bytes: bytes, declare: bool) -> bytes:
    """The fixture notice with `&custom;` inside its first paragraph's text (declared in a DOCTYPE, or not)."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "word/document.xml":
                text = data.decode("utf-8").replace("关于加强", "关于&custom;加强", 1)
                if declare:
                    head, _, rest = text.partition("?>")
                    text = head + '?><!DOCTYPE w:document [<!ENTITY custom "SYSTEM">]>' + rest
                data = text.encode("utf-8")
            out.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize("declare", [True, False])
def test_text_after_an_unresolved_entity_in_a_docx_is_kept(tmp_path: Path, declare: bool) -> None:
    data = with_entities((DOCUMENTS / "notice.docx").read_bytes(), declare)
    extraction = BY_NAME["docx"].read(data, "notice.docx")
    assert extraction.blocks[0].text == "关于加强城市供水安全管理的通知"
    assert extraction.notes == ("1 undefined XML entity left out (the text around kept)",)
    if not declare:
        return  # the build account is the same either way: checked once
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notice.docx").write_bytes(data)
    # normal priority: a one-file build at nice 19 waits out the other test worker (35 s in the suite, 4 s alone)
    env = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(tmp_path / "index"), "WENDA_INDEX_PRIORITY": "normal"}
    built = run_wenda("index", "-q", env=env)
    assert built.returncode == 0 and "note: notice.docx: 1 undefined XML entity left out" in built.stderr.decode()
    entry = json.loads(run_wenda("sources", "--json", env=env).stdout)[0]
    assert entry["status"] == "indexed" and entry["notes"] == ["1 undefined XML entity left out (the text around kept)"]
    assert "note: 1 undefined XML entity" in run_wenda("sources", env=env).stdout.decode()
