"""What every document reader returns: the extracted text, the blocks to index, and the document's metadata."""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field


class SkippedFile(Exception):
    """A corpus file that cannot be indexed; the message says why and, where it can, what to do. `detail` is the
    reader's traceback when a reader failed unexpectedly: for the build log and `--verbose`, never the one line."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


# Untrusted input: a zip-based file (.docx, .epub) may unpack to far more than it weighs (a "zip bomb").
MAX_UNPACKED_BYTES = int(os.environ.get("WENDA_MAX_UNPACKED_MB", "200")) * 1024 * 1024
MAX_PACK_RATIO = 200  # real documents compress 3–20×; a bomb, thousands of times
MAX_PAGES = int(os.environ.get("WENDA_MAX_PAGES", "2000"))  # a longer PDF is an archive, not a document


# The note a browser's "Save as" (and `wenda add URL`) puts at the top of a saved page: `<!-- saved from
# url=(0041)https://… -->`, the number the URL's length.
SAVED_FROM = re.compile(rb"<!--\s*saved from url=\(\d+\)(\S+?)\s*-->", re.I)


def with_saved_from(data: bytes, url: str) -> bytes:
    """A fetched page with the URL noted on a first line of its own, as a browser's "Save as" does."""
    return f"<!-- saved from url=({len(url):04d}){url} -->\n".encode("ascii", "replace") + data


def without_saved_from(data: bytes) -> bytes:
    """A saved page without the "saved from" line at its top: the page as it was fetched."""
    match = SAVED_FROM.match(data)
    if match is None:
        return data
    rest = data[match.end() :]
    return rest[1:] if rest.startswith(b"\n") else rest


@dataclass(frozen=True)
class Block:
    """A paragraph (or heading, or table row) of a document and where it is in the extracted text.

    `line` is 1-based in the extracted text of its unit and the block spans `lines` lines there; `where` names
    the unit ({"page": 3}, {"chapter": 2}; none for a document read as one flow) and may add a table row or
    footnote ({"table": 1, "row": 3}); `level` is the heading level when the format marks headings (1 = top),
    None for body text; `context` is what a passage needs to be understood but does not say, such as a table
    row's header row."""

    text: str
    line: int
    lines: int = 1
    level: int | None = None
    where: dict = field(default_factory=dict)
    context: str | None = None

    @property
    def unit(self) -> int:
        """The page or chapter (1-based) whose extracted text holds the block; 0 for a single-flow document."""
        return self.where.get("page") or self.where.get("chapter") or 0


@dataclass
class Extraction:
    """A read document: `pages` holds the extracted text, one list of lines per unit, which citations point
    into; `blocks` are what gets indexed; `meta` is title/publisher/date/url (and tags, a list) from the
    document itself."""

    pages: list[list[str]]
    blocks: list[Block]
    meta: dict[str, str | list[str]] = field(default_factory=dict)
    unit: str | None = None  # what a unit is called in a citation: "page", "chapter", or None for one flow
    encoding: str = "utf-8"
    shaped_headings: bool = False  # headings are told by their shape (short, no closing punctuation)
    ocr: str | None = None  # how the text was read where a format may need OCR: "text" layer, "ocr" or "both"
    notes: tuple[str, ...] = ()  # what the reader left out or mended in a file it did read: for the build account

    def lines_of(self, unit: int) -> list[str]:
        """The extracted lines of one unit (0 for a single-flow document)."""
        return self.pages[max(unit - 1, 0)] if self.pages else []


class Reader:
    """One document format. `suffixes` pick it by name; `sniff` recognises it by content (a PDF renamed .txt)."""

    name: str = ""
    suffixes: tuple[str, ...] = ()

    def sniff(self, head: bytes) -> bool:
        """True when these first bytes can only be this format."""
        return False

    def read(self, data: bytes, name: str) -> Extraction:
        raise NotImplementedError


WHITESPACE = re.compile(r"\s+")
CJK = r"\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_GAP = re.compile(rf"(?<=[{CJK}])[ \t\u00a0]+|[ \t\u00a0]+(?=[{CJK}])")


# Kangxi and supplementary radicals (U+2F00–U+2FD5, U+2E80–U+2EF3) look like the ideographs they stand for
# (⼈ and 人) but match nothing a user types; some PDF producers emit them. NFKC maps each to its ideograph.
RADICALS = {
    code: unicodedata.normalize("NFKC", chr(code))
    for code in [*range(0x2E80, 0x2EF4), *range(0x2F00, 0x2FD6)]
    if unicodedata.normalize("NFKC", chr(code)) != chr(code)
}


def tidy(text: str) -> str:
    """One line of extracted text: runs of whitespace become one space, spaces next to CJK characters or
    full-width punctuation (letter-spaced titles, padded cells) go, and radicals become their ideographs."""
    return CJK_GAP.sub("", WHITESPACE.sub(" ", text.translate(RADICALS))).strip()


def open_zip(data: bytes, what: str) -> zipfile.ZipFile:
    """A zip-based document opened only when it cannot unpack to a bomb; SkippedFile otherwise."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SkippedFile(f"not a valid {what} file (damaged or truncated zip: {exc})") from exc
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members) or 1
    if unpacked > MAX_UNPACKED_BYTES or unpacked > max(packed * MAX_PACK_RATIO, 1 << 20):
        raise SkippedFile(
            f"rejected: it would unpack to {unpacked / 2**20:.0f} MB from {len(data) / 2**20:.1f} MB "
            f"(a decompression bomb, or a damaged {what} file); the limit is {MAX_UNPACKED_BYTES // 2**20} MB, "
            "set WENDA_MAX_UNPACKED_MB"
        )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, what: str) -> bytes:
    """One member of a checked archive, read no further than its declared size (the header may lie)."""
    try:
        info = archive.getinfo(name)
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except KeyError as exc:
        raise SkippedFile(f"not a valid {what} file ({name} is missing)") from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SkippedFile(f"not a valid {what} file ({name} is damaged: {exc})") from exc
    if len(data) > info.file_size:
        raise SkippedFile(f"rejected: {name} unpacks to more than its declared size (a damaged or hostile {what})")
    return data


LATIN_END = re.compile(r"[A-Za-z0-9.,;:!?)\]%'\"]$")  # a Latin word, or ASCII punctuation after one
LATIN_START = re.compile(r"^[A-Za-z0-9([\"'‘“•]")  # a Latin word, or what opens one
HYPHENATED = re.compile(r"[A-Za-z]-$")


def join_lines(lines: list[str]) -> str:
    """Lines of one paragraph as one string: CJK text joins without a space, Latin words with one, and a word
    hyphenated at a line end ("Public-Pri-" + "vate") is mended."""
    text = ""
    for line in (tidy(line) for line in lines):
        if not line:
            continue
        if HYPHENATED.search(text) and line[0].islower():
            text = text[:-1] + line
        elif LATIN_END.search(text) and LATIN_START.match(line):
            text = f"{text} {line}"
        else:
            text += line
    return text


# What document properties often hold instead of a name: an account name, a template's placeholder.
PLACEHOLDER_AUTHORS = {
    "administrator",
    "admin",
    "user",
    "author",
    "作者",
    "微软用户",
    "微软中国",
    "microsoft",
    "unknown",
}
SITE_SUFFIX = re.compile(r"\s*[-_|–—·]\s*([^-_|–—·]{1,16})$")
SITE_WORDS = re.compile(r"网|报|频道|新闻|在线|官网|门户|\.(com|cn|net|org)\b", re.I)


def credible_author(value: str) -> str:
    """An author or publisher worth citing, or "": one bare ASCII word ("sky", "Smith") is an account name."""
    value = tidy(value)
    if value.lower() in PLACEHOLDER_AUTHORS or re.fullmatch(r"[A-Za-z0-9_.]+", value):
        return ""
    return value


def clean_title(title: str) -> str:
    """A web page's title without the site and channel names browsers show after it ("…_教育频道_中国青年网")."""
    title = tidy(title)
    while (match := SITE_SUFFIX.search(title)) and SITE_WORDS.search(match.group(1)) and match.start() >= 4:
        title = title[: match.start()]
    return title
