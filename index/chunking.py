"""Turn a document's blocks into paragraphs with sections, and cut long paragraphs into windows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import ChunkingParams
from .formats.base import Block, Extraction

# A heading never ends like a sentence or a clause.
CLOSING_PUNCTUATION = '。！？；…!?;.，,、：:”’"」』）)】'
SENTENCE_END = re.compile(r"[。！？；!?;]+[”’\"」』）)]*")
# Reporter credits ("□本报记者 牛思明") look like headings but name no section.
BYLINE = re.compile(r"^[□■◇◆]?\s*(本报记者|记者|通讯员|本报讯)")
SECTION_JOIN = " › "
# Title, subtitle, byline and a section heading: the longest run of headings in the bundled reports is 4.
HEADING_RUN_MAX = 4


@dataclass(frozen=True)
class Paragraph:
    """A block of a document: `number` is its 1-based ordinal among them; `line`, `lines` and `where` locate
    it in the extracted text (Block); `section` is the heading path above it (with a table row's header)."""

    number: int
    line: int
    text: str
    section: str | None
    heading: bool
    lines: int = 1
    where: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A window of a paragraph: `text == paragraph.text[start:end]`."""

    paragraph: Paragraph
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.paragraph.text[self.start : self.end]


def is_heading_candidate(text: str, params: ChunkingParams) -> bool:
    """Short and without closing punctuation: a title, section heading or byline."""
    return len(text) <= params.heading_max_chars and text[-1] not in CLOSING_PUNCTUATION


def shaped_headings(blocks: list[Block], params: ChunkingParams) -> list[bool]:
    """Which blocks are headings by shape: runs of short lines with body text after them (a trailing run is
    body text), as in plain-text reports and PDFs."""
    candidate = [is_heading_candidate(block.text, params) for block in blocks]
    heading = [False] * len(blocks)
    for i in range(len(blocks) - 2, -1, -1):
        heading[i] = candidate[i] and (not candidate[i + 1] or heading[i + 1])
    start = 0
    for i in range(len(blocks) + 1):  # a longer run of short lines is a list or a table, searchable body text
        if i == len(blocks) or not heading[i]:
            if i - start > HEADING_RUN_MAX:
                heading[start:i] = [False] * (i - start)
            start = i + 1
    return heading


def paragraphs_of(extraction: Extraction, params: ChunkingParams, title: str | None = None) -> list[Paragraph]:
    """Paragraphs with their sections. Headings told by shape: a run of them is the section of the body text
    after it (bylines aside). Headings the format marks: the path of headings above, by level, less the
    document's own title."""
    blocks = extraction.blocks
    shaped = shaped_headings(blocks, params) if extraction.shaped_headings else None
    paragraphs: list[Paragraph] = []
    section: str | None = None
    run: list[str] = []
    path: list[tuple[int, str]] = []
    for index, block in enumerate(blocks):
        heading = shaped[index] if shaped is not None else block.level is not None
        if shaped is not None:
            if heading:
                if not BYLINE.match(block.text):
                    run.append(block.text)
            elif run:
                section, run = SECTION_JOIN.join(run), []
        elif heading:
            assert block.level is not None
            path = [(level, text) for level, text in path if level < block.level]
            if block.text != title:
                path.append((block.level, block.text))
            section = SECTION_JOIN.join(text for _, text in path) or None
        context = SECTION_JOIN.join(filter(None, (section, block.context))) or None
        paragraphs.append(
            Paragraph(
                index + 1, block.line, block.text, None if heading else context, heading, block.lines, block.where
            )
        )
    return paragraphs


def sentence_spans(text: str, max_chars: int) -> list[tuple[int, int]]:
    """(start, end) of each sentence, ending at 。！？； and the like; over-long sentences cut at max_chars."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    pieces: list[tuple[int, int]] = []
    for begin, end in spans:
        pieces.extend((cut, min(cut + max_chars, end)) for cut in range(begin, end, max_chars))
    return pieces


def windows(text: str, params: ChunkingParams) -> list[tuple[int, int]]:
    """Overlapping sentence-aligned windows of at most `max_chars` covering the whole text."""
    if len(text) <= params.max_chars:
        return [(0, len(text))]
    spans = sentence_spans(text, params.max_chars)
    result: list[tuple[int, int]] = []
    first = 0
    while True:
        last = first
        while last + 1 < len(spans) and spans[last + 1][1] - spans[first][0] <= params.max_chars:
            last += 1
        result.append((spans[first][0], spans[last][1]))
        if last == len(spans) - 1:
            return result
        first = max(last + 1 - params.overlap_sentences, first + 1)


def chunk_paragraphs(paragraphs: list[Paragraph], params: ChunkingParams) -> list[Chunk]:
    """Chunks of every body paragraph (headings are context, not chunks)."""
    return [
        Chunk(paragraph, start, end)
        for paragraph in paragraphs
        if not paragraph.heading
        for start, end in windows(paragraph.text, params)
    ]
