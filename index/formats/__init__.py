"""Document readers, one module per format behind `Reader`, picked here: by content first (a PDF renamed `.txt`
is still a PDF), then by the file name's suffix."""

from __future__ import annotations

from .base import Extraction, Reader, SkippedFile
from .docx import DocxReader
from .epub import EpubReader
from .html import HtmlReader
from .markdown import MarkdownReader
from .pdf import OCR_HINT, PdfReader
from .text import TextReader


class ImageReader(Reader):
    """Pictures are found so that they can be named in a warning: there is no text to index without OCR."""

    name = "image"
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")

    def sniff(self, head: bytes) -> bool:
        return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF8"))

    def read(self, data: bytes, name: str) -> Extraction:
        raise SkippedFile(f"an image, with no text layer; {OCR_HINT}")


# Sniffing order: the specific signatures first; plain text last, as what is left.
READERS: tuple[Reader, ...] = (
    PdfReader(),
    EpubReader(),
    DocxReader(),
    ImageReader(),
    HtmlReader(),
    MarkdownReader(),
    TextReader(),
)
SUFFIXES = tuple(suffix for reader in READERS for suffix in reader.suffixes)
BY_NAME = {reader.name: reader for reader in READERS}


def reader_for(name: str, head: bytes) -> Reader:
    """The reader for a file named `name` starting with `head`; by suffix only for content that says nothing."""
    for reader in READERS:
        if reader.sniff(head):
            return reader
    lowered = name.lower()
    for reader in READERS:
        if lowered.endswith(reader.suffixes):
            return reader
    return BY_NAME["text"]


__all__ = ["BY_NAME", "READERS", "SUFFIXES", "Extraction", "Reader", "SkippedFile", "reader_for"]
