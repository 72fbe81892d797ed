"""index.isolation: a reader that crashes, hangs or runs out of memory costs that one file, with the reason, and
the next file is read by a fresh worker. Real files: a 619-page PDF from a parser test suite (8 s to read)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest
from conftest import run_wenda
from PIL import Image
from wenda.index import isolation
from wenda.index.formats import SkippedFile
from wenda.index.isolation import Reading
from wenda.index.loader import Document, read_document

DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"
REALDOCS = Path(__file__).resolve().parents[2] / "shared" / "realdocs"
LONG = "unstructured-da-619p.pdf"


def document(folder: Path, name: str) -> Document:
    return read_document(folder / name, folder)


def test_a_document_read_in_the_worker_comes_back_as_read_in_process() -> None:
    isolated = Reading().extract(document(DOCUMENTS, "report.pdf"))
    assert isolated == document(DOCUMENTS, "report.pdf").extract()


def test_a_file_that_takes_too_long_is_skipped_and_the_next_one_read() -> None:
    reading = Reading(timeout=1)
    started = time.monotonic()
    with pytest.raises(SkippedFile, match=r"took longer than 1 s .*WENDA_READ_TIMEOUT"):
        reading.extract(document(REALDOCS, LONG))
    assert time.monotonic() - started < 5
    # The next file gets a fresh worker, whose start (imports) must not count against a 1 s budget on a busy box.
    reading.timeout = isolation.READ_TIMEOUT
    assert reading.extract(document(DOCUMENTS, "report.pdf")).blocks


def test_a_reader_killed_mid_file_skips_that_file_only() -> None:
    """As the kernel's out-of-memory killer (or a parser's segfault) ends the worker."""
    reading = Reading()
    reading.extract(document(DOCUMENTS, "report.pdf"))  # the worker is up
    worker = isolation._worker
    assert worker is not None
    threading.Timer(1.0, os.kill, (worker.process.pid, signal.SIGKILL)).start()
    with pytest.raises(SkippedFile, match=r"the pdf reader crashed on it \(SIGKILL, likely out of memory"):
        reading.extract(document(REALDOCS, LONG))
    assert reading.extract(document(DOCUMENTS, "report.pdf")).blocks


def test_a_reader_over_its_memory_limit_skips_that_file(tmp_path: Path) -> None:
    """A 10,500 × 10,500 picture: 14 MB as a file, 330 MB once decoded to colour."""
    Image.new("1", (10_500, 10_500), 1).save(tmp_path / "poster.png")
    limited = Reading(memory_mb=1000)  # room for a reader and an ordinary file (measured: 800 MB suffice)
    assert limited.extract(document(DOCUMENTS, "report.pdf")).blocks
    with pytest.raises(SkippedFile, match=r"needed more memory than allowed \(set WENDA_READ_MEMORY_MB\)"):
        limited.extract(document(tmp_path, "poster.png"))
    assert Reading().extract(document(DOCUMENTS, "report.pdf")).blocks


def test_plain_text_and_markdown_are_read_in_process() -> None:
    before = isolation._worker
    assert Reading().extract(document(DOCUMENTS, "guide.md")).blocks
    assert isolation._worker is before


def damaged_docx() -> bytes:
    """A Word file whose package lacks its content types: python-docx fails inside itself (AttributeError)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<x/>")
        archive.writestr("word/document.xml", '<w:document xmlns:w="x"><w:body>')
    return buffer.getvalue()


def test_what_a_reader_raised_comes_back_from_the_worker_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.docx").write_bytes(damaged_docx())
    with pytest.raises(SkippedFile, match=r"not a readable Word \.docx file \(AttributeError") as caught:
        Reading().extract(document(tmp_path, "broken.docx"))
    assert "Traceback" in (caught.value.detail or "") and "docx" in caught.value.detail


def test_the_build_logs_tracebacks_and_prints_them_only_when_asked(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("第一段：政务服务“一网通办”改革在全市推开。\n", encoding="utf-8")
    (corpus / "broken.docx").write_bytes(damaged_docx())
    env = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(tmp_path / "index")}
    done = run_wenda("index", "-q", env=env)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in out + err, err
    assert "warning: skipped broken.docx: not a readable Word .docx file (AttributeError" in err
    log = tmp_path / "index" / "build.log"
    assert f"what the reader raised: {log}" in out
    assert "== broken.docx" in log.read_text() and "Traceback (most recent call last)" in log.read_text()
    (corpus / "broken.docx").write_bytes(damaged_docx() + b"\0")  # changed: read again, now verbosely
    done = run_wenda("index", "-q", "--verbose", env=env)
    assert done.returncode == 0 and "== broken.docx\nTraceback (most recent call last)" in done.stderr.decode()
