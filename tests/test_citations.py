"""Citations of the new formats: locators in JSON, in the terminal and in Telegram (with a highlight link)."""

from __future__ import annotations

import json
from urllib.parse import unquote

from wenda.bot.render import citation_line
from wenda.bot.telegram.format import citation
from wenda.index.sources import source_info
from wenda.index.store import ChunkRecord
from wenda.retrieval.results import Result

TEXT = "清河市首条有轨电车线路全长18.6公里，设站21座，西起火车站，途经人民路、滨江大道。"


def record(source: str, locator: dict, url: str | None = None, fmt: str = "pdf") -> ChunkRecord:
    return ChunkRecord(
        1,
        source,
        12,
        5,
        "一、<概况>",
        "清河&日报",
        None,
        "清河日报",
        "2024-06-18",
        0,
        len(TEXT),
        TEXT,
        2,
        json.dumps(locator) if locator else None,
        url,
        fmt,
    )


def test_json_citation_carries_the_locator_fields() -> None:
    cited = Result(1, 1.0, record("report.pdf", {"page": 3})).to_dict()["citation"]
    assert (cited["page"], cited["line"], cited["lines"], cited["locator"], cited["format"]) == (
        3,
        12,
        2,
        "p3:12",
        "pdf",
    )
    row = Result(1, 1.0, record("notice.docx", {"table": 1, "row": 4}, fmt="docx")).to_dict()["citation"]
    assert (row["table"], row["row"], row["locator"]) == (1, 4, "12")
    assert "page" not in row


def test_terminal_citation_names_the_page_and_the_show_reference() -> None:
    assert citation_line(record("report.pdf", {"page": 3})) == "《清河&日报》 · 一、<概况> · 第3页 · report.pdf:p3:12"
    assert citation_line(record("book.epub", {"chapter": 2})).endswith("第2章 · book.epub:c2:12")
    assert citation_line(record("n.docx", {"table": 1, "row": 4})).endswith("表1第4行 · n.docx:12")


def test_telegram_links_a_web_source_with_a_text_fragment_and_escapes_everything() -> None:
    html = citation(Result(1, 1.0, record("article.html", {}, "https://news.example.cn/a?id=1&x=2", "html")))
    assert "清河&amp;日报" in html and "&lt;概况&gt;" in html
    href = html.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    base, fragment = href.split("#:~:text=")
    assert base == "https://news.example.cn/a?id=1&x=2"
    start, end = (unquote(part) for part in fragment.split(","))
    assert TEXT.startswith(start) and TEXT.endswith(end) and "," not in fragment.replace(",", "", 1)
    assert "href" not in citation(Result(1, 1.0, record("a.html", {}, "javascript:alert(1)", "html")))


def test_sources_toml_overrides_what_the_document_says() -> None:
    meta = {"title": "PDF 标题", "publisher": "作者甲", "date": "2024-02-01"}
    info = source_info({"title": "我的标题", "place": "清河市"}, ["第一行"], meta, "a.pdf", "安阳市 安阳市 安阳")
    assert (info.title, info.publisher, info.date, info.place) == ("我的标题", "作者甲", "2024-02-01", "清河市")
    assert source_info(None, ["第一行"], {}).title == "第一行"
