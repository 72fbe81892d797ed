"""Split a document into paragraphs, detect section headings and cut long paragraphs into windows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import ChunkingParams

# A heading never ends like a sentence or a clause.
CLOSING_PUNCTUATION = '。！？；…!?;.，,、：:”’"」』）)】'
SENTENCE_END = re.compile(r"[。！？；!?;]+[”’\"」』）)]*")
# Reporter credits ("□本报记者 牛思明") look like headings but name no section.
BYLINE = re.compile(r"^[□■◇◆]?\s*(本报记者|记者|通讯员|本报讯)")
SECTION_JOIN = " › "


@dataclass(frozen=True)
class Paragraph:
    """A non-blank line: `number` is its 1-based ordinal among them, `line` its 1-based line number."""

    number: int
    line: int
    text: str
    section: str | None
    heading: bool


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


def split_paragraphs(text: str, params: ChunkingParams) -> list[Paragraph]:
    """Each non-blank line is a paragraph; runs of short lines before body text are its section headings."""
    lines = [(number, line.strip()) for number, line in enumerate(text.split("\n"), start=1)]
    lines = [(number, line) for number, line in lines if line]
    candidate = [is_heading_candidate(line, params) for _, line in lines]
    # A run of candidates is a heading only if body text follows it (a trailing run is body text).
    heading = [False] * len(lines)
    for i in range(len(lines) - 2, -1, -1):
        heading[i] = candidate[i] and (not candidate[i + 1] or heading[i + 1])
    paragraphs: list[Paragraph] = []
    section: str | None = None
    run: list[str] = []
    for index, (number, line) in enumerate(lines):
        if heading[index]:
            if not BYLINE.match(line):
                run.append(line)
        elif run:
            section, run = SECTION_JOIN.join(run), []
        paragraphs.append(Paragraph(index + 1, number, line, None if heading[index] else section, heading[index]))
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
