"""Old binary Office files (.doc, .ppt, .xls: OLE2 compound files) are recognised so that a warning can name
them and what to do: reading their text needs a converter (LibreOffice, antiword) that Wenda does not ship.
An encrypted .docx, .xlsx or .pptx is an OLE2 file too (the encrypted package inside one), so the streams the
file holds, then its suffix, decide what the message says."""

from __future__ import annotations

import os

from .base import Extraction, Reader, SkippedFile

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def stream(name: str) -> bytes:
    """A stream's name as an OLE2 directory entry holds it: UTF-16LE, ending in NUL."""
    return (name + "\0").encode("utf-16-le")


ENCRYPTED = stream("EncryptedPackage")  # Office's password encryption of a .docx, .xlsx or .pptx
OLD = {".doc": ("Word", ".docx"), ".ppt": ("PowerPoint", ".pptx"), ".xls": ("Excel", ".xlsx")}
STREAMS = (  # the stream that makes each old format, found by its directory entry
    (stream("WordDocument"), ".doc"),
    (stream("PowerPoint Document"), ".ppt"),
    (stream("Workbook"), ".xls"),
    (stream("Book"), ".xls"),  # Excel 5/95
)
PROTECTED = {".docx": "the document", ".xlsx": "the workbook", ".pptx": "the presentation"}


def ole2_reason(data: bytes, name: str) -> str:
    """Why an OLE2 file is skipped and what to do, in the words its suffix and its streams call for."""
    suffix = os.path.splitext(name.lower())[1]
    if ENCRYPTED in data or (suffix in PROTECTED and not any(marker in data for marker, _ in STREAMS)):
        what = PROTECTED.get(suffix, "an Office file that")
        return f"{what} is password-protected (encrypted); save an unprotected copy and add that"
    old = next((old for marker, old in STREAMS if marker in data), suffix)
    if old not in OLD:
        return "an old binary Office file (OLE2); save it as .docx, .xlsx or .pptx and add it again"
    program, modern = OLD[old]
    named = f", named {suffix}" if suffix and suffix != old else ""
    return f"an old binary {program} file ({old}{named}); save it as {modern} and add it again"


class LegacyReader(Reader):
    name = "legacy"
    suffixes = (".doc", ".ppt", ".xls")

    def sniff(self, head: bytes) -> bool:
        return head.startswith(OLE2)

    def read(self, data: bytes, name: str) -> Extraction:
        if data.startswith(OLE2):
            raise SkippedFile(ole2_reason(data, name))
        program, modern = OLD.get(os.path.splitext(name.lower())[1], ("Office", ".docx, .xlsx or .pptx"))
        if data.lstrip().startswith(b"{\\rtf"):
            raise SkippedFile(f"a Rich Text (RTF) file under an old {program} name; save it as {modern} and add that")
        raise SkippedFile(f"not an old {program} file (no OLE2 header: damaged?); save it as {modern} and add that")
