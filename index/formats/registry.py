"""The reader of each format, picked by content first (a PDF renamed `.txt` is still a PDF), then by the file
name's suffix."""

from __future__ import annotations

from .base import Reader
from .docx import DocxReader
from .epub import EpubReader
from .html import HtmlReader
from .image import ImageReader
from .legacy import LegacyReader
from .markdown import MarkdownReader
from .odt import OdtReader
from .pdf import PdfReader
from .pptx import PptxReader
from .tabular import TabularReader
from .text import TextReader
from .xlsx import XlsxReader

# Sniffing order: the specific signatures first; plain text last, as what is left. The zip-based formats are
# told apart by what the zip holds: EPUB and ODT name their type first (the mimetype member), the Office formats
# by the folder of their first members (word/, ppt/, xl/); one whose members come in another order goes by suffix.
# An OLE2 file is an old Office file, or an encrypted new one: the legacy reader says which.
READERS: tuple[Reader, ...] = (
    PdfReader(),
    EpubReader(),
    OdtReader(),
    DocxReader(),
    PptxReader(),
    XlsxReader(),
    LegacyReader(),
    ImageReader(),
    HtmlReader(),
    MarkdownReader(),
    TabularReader(),
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
