"""Plain text: UTF-8 (with or without BOM), UTF-16 (with or without BOM), GB18030 or Big5; one paragraph a line."""

from __future__ import annotations

import re

from .base import Block, Extraction, Reader, SkippedFile

# Tried in order after the BOMs; GB18030 is a superset of GBK and GB2312, the usual legacy Chinese files, and
# decodes nearly any bytes (Big5 text comes out as private-use mojibake): which legacy encoding a file that is
# not UTF-8 is in, GB18030 or Big5 (Taiwan, Hong Kong), charset-normalizer decides by how the text reads.
ENCODINGS = ("utf-8", "gb18030")
LEGACY = ["gb18030", "big5"]
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


PLAUSIBLE = re.compile(r"[\t\n\r\x20-\x7e\u00a0-\u024f\u2000-\u206f\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" for text with NUL bytes that reads as text in one byte order: nearly all of it
    ASCII, CJK or their punctuation (the wrong order gives Gurmukhi line ends and Hangul); None otherwise."""
    head = data[:4096]
    if b"\x00" not in head:
        return None
    head = head[: len(head) // 2 * 2]
    for encoding in ("utf-16-le", "utf-16-be"):
        text = head.decode(encoding, "replace")
        if len(PLAUSIBLE.findall(text)) >= 0.95 * len(text):
            return encoding
    return None


def decode(data: bytes) -> tuple[str, str]:
    """Decode file bytes to text with universal line ends; raise SkippedFile for binary or unknown bytes."""
    encodings: tuple[str, ...] = ENCODINGS
    for bom, encoding in BOMS:
        if data.startswith(bom):
            data, encodings = data[len(bom) :], (encoding,)
            break
    else:
        utf16 = utf16_without_bom(data)
        if utf16:
            encodings = (utf16,)
        elif b"\x00" in data[:8192]:
            raise SkippedFile("binary file (contains NUL bytes)")
    if encodings == ENCODINGS and not _is_utf8(data):
        from charset_normalizer import from_bytes  # only for legacy files: not on every reader's import

        best = from_bytes(data, cp_isolation=LEGACY).best()
        if best is not None:
            encodings = tuple(dict.fromkeys(("utf-8", best.encoding, *ENCODINGS)))
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if not text.strip():
            raise SkippedFile("empty file")
        return text.replace("\r\n", "\n").replace("\r", "\n"), encoding
    if not data.strip():
        raise SkippedFile("empty file")
    raise SkippedFile(f"not {' or '.join(e.upper() for e in encodings)} text")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TextReader(Reader):
    """Each non-blank line is a paragraph; headings are told by their shape, as in the bundled reports."""

    name = "text"
    suffixes = (".txt",)

    def read(self, data: bytes, name: str) -> Extraction:
        text, encoding = decode(data)
        lines = text.split("\n")
        blocks = [Block(line.strip(), number) for number, line in enumerate(lines, start=1) if line.strip()]
        return Extraction([lines], blocks, encoding=encoding, shaped_headings=True)
