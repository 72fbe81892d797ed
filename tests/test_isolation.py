"""index.isolation: a reader that crashes, hangs or runs out of memory costs that one file, with the reason, and
the next file is read by a fresh worker. Real files: a 619-page PDF from a parser test suite (8 s to read)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
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
    with pytest.raises(SkippedFile, match=r"needed more memory than allowed \(set WENDA_READ_MEMORY_MB\)"):
        Reading(memory_mb=1700).extract(document(tmp_path, "poster.png"))
    assert Reading().extract(document(DOCUMENTS, "report.pdf")).blocks


def test_plain_text_and_markdown_are_read_in_process() -> None:
    before = isolation._worker
    assert Reading().extract(document(DOCUMENTS, "guide.md")).blocks
    assert isolation._worker is before
