"""index.chunking: paragraphs, headings and long-paragraph windows."""

from wenda.index.chunking import Paragraph, chunk_paragraphs, paragraphs_of, sentence_spans, windows
from wenda.index.config import ChunkingParams
from wenda.index.formats.text import TextReader

PARAMS = ChunkingParams()


def split_paragraphs(text: str, params: ChunkingParams) -> list[Paragraph]:
    return paragraphs_of(TextReader().read(text.encode("utf-8"), "article.txt"), params)


ARTICLE = """6.以人为核心的新型城镇化战略
安居民富景象新
□本报记者 牛思明
今年年初以来，市委、市政府提出贯彻落实十条举措。

老旧小区展新颜

晨峰小区始建于1992年，有居民5500余人。
来源:襄阳日报
责任编辑:翟竞
"""


def test_paragraph_numbers_lines_and_headings() -> None:
    paragraphs = split_paragraphs(ARTICLE, PARAMS)
    assert [(p.number, p.line, p.heading) for p in paragraphs] == [
        (1, 1, True),
        (2, 2, True),
        (3, 3, True),
        (4, 4, False),
        (5, 6, True),
        (6, 8, False),
        (7, 9, False),
        (8, 10, False),
    ]


def test_heading_run_becomes_section_without_byline() -> None:
    paragraphs = split_paragraphs(ARTICLE, PARAMS)
    assert paragraphs[3].section == "6.以人为核心的新型城镇化战略 › 安居民富景象新"
    assert paragraphs[5].section == "老旧小区展新颜"
    # short lines at the end are body text (no body follows them), still in the last section
    assert [p.section for p in paragraphs[6:]] == ["老旧小区展新颜"] * 2


def test_text_before_any_heading_has_no_section() -> None:
    paragraphs = split_paragraphs("第一段正文，没有标题。\n小标题\n正文。", PARAMS)
    assert [p.section for p in paragraphs] == [None, None, "小标题"]


def test_short_paragraph_is_one_window() -> None:
    assert windows("短句。", PARAMS) == [(0, 3)]


def test_long_paragraph_windows_cover_text_at_sentence_ends_with_overlap() -> None:
    sentences = [f"第{i}句话讲了改革的第{i}项成果，数字是{i * 7}。" for i in range(60)]
    text = "".join(sentences)
    spans = windows(text, PARAMS)
    assert len(spans) > 2
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (start, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert end - start <= PARAMS.max_chars
        assert next_start < end  # overlap: no fact falls between two windows
        assert text[end - 1] == "。" and text[next_start - 1] == "。"


def test_sentence_longer_than_window_is_cut() -> None:
    text = "无" * 800
    assert sentence_spans(text, 350) == [(0, 350), (350, 700), (700, 800)]
    assert windows(text, PARAMS)[-1][1] == 800


def test_chunks_skip_headings_and_keep_offsets() -> None:
    paragraphs = split_paragraphs(ARTICLE, PARAMS)
    chunks = chunk_paragraphs(paragraphs, PARAMS)
    assert [c.paragraph.number for c in chunks] == [4, 6, 7, 8]
    assert all(c.text == c.paragraph.text[c.start : c.end] for c in chunks)
