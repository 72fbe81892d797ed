"""index.formats.ocr, image and the PDF reader's OCR: scans and photos from public OCR test suites read with the
built-in engine, each passage citing its page and the box of the recognised region, results cached."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from wenda.index.formats import BY_NAME, SkippedFile, ocr
from wenda.index.formats.ocr import OcrOptions

REALDOCS = Path(__file__).resolve().parents[2] / "shared" / "realdocs"
DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"


@pytest.fixture
def cached(ocr_cache: Path):
    ocr.configure(OcrOptions(cache=ocr_cache / "ocr.sqlite"))
    yield ocr_cache / "ocr.sqlite"
    ocr.configure(OcrOptions())


def read(name: str, reader: str, folder: Path = REALDOCS):
    return BY_NAME[reader].read((folder / name).read_bytes(), name)


def test_a_photo_of_chinese_text_is_read_with_boxes(cached: Path) -> None:
    extraction = read("unstructured-chi_sim_image.jpeg", "image")
    text = "".join(block.text for block in extraction.blocks)
    assert "适合任何肌肤" in text and extraction.ocr == "ocr"
    for block in extraction.blocks:
        x0, top, x1, bottom = block.where["box"]
        assert block.where["page"] == 1 and 0 <= x0 < x1 and 0 <= top < bottom
        assert block.text.startswith(extraction.pages[0][block.line - 1][:4])  # the cited line holds it


def test_a_scanned_pdf_is_read_page_by_page_in_pdf_points(cached: Path) -> None:
    extraction = read("rapiddoc-hanyinzhang-seal.pdf", "pdf")
    assert extraction.ocr == "ocr" and len(extraction.pages) == 4
    first = [block for block in extraction.blocks if "浙江优策投资管理有限公司" in block.text]
    assert first and first[0].where["page"] == 1
    assert all(0 <= v <= 900 for v in first[0].where["box"])  # an A4 page is 595 × 842 points


def test_the_second_read_of_a_scan_comes_from_the_cache(tmp_path: Path) -> None:
    ocr.configure(OcrOptions(cache=tmp_path / "ocr.sqlite"))
    started = time.perf_counter()
    first = read("unstructured-layout-parser-paper-with-table.jpg", "image")
    cold = time.perf_counter() - started
    started = time.perf_counter()
    second = read("unstructured-layout-parser-paper-with-table.jpg", "image")
    warm = time.perf_counter() - started
    ocr.configure(OcrOptions())
    assert first == second and (tmp_path / "ocr.sqlite").exists()
    assert warm < cold / 5


def test_a_pdf_with_a_text_layer_is_not_ocred() -> None:
    assert read("report.pdf", "pdf", DOCUMENTS).ocr == "text"


def test_without_ocr_a_scan_is_skipped_with_the_reason() -> None:
    ocr.configure(OcrOptions(enabled=False))
    try:
        with pytest.raises(SkippedFile, match=r"no text layer \(1 page\(s\) of images: a scan\) and OCR is turned off"):
            read("scanned.pdf", "pdf", DOCUMENTS)
        with pytest.raises(SkippedFile, match="OCR is turned off"):
            read("rapidocr-ch_en_num.jpg", "image")
    finally:
        ocr.configure(OcrOptions())


def test_more_pages_to_ocr_than_allowed_is_a_reason(cached: Path) -> None:
    ocr.configure(OcrOptions(cache=cached, max_pages=3))
    with pytest.raises(SkippedFile, match=r"4 pages need OCR, over the limit of 3 \(set WENDA_OCR_MAX_PAGES"):
        read("rapiddoc-hanyinzhang-seal.pdf", "pdf")


def test_an_image_with_no_text_is_skipped(tmp_path: Path, cached: Path) -> None:
    from PIL import Image

    Image.new("RGB", (400, 300), (250, 250, 250)).save(tmp_path / "blank.png")
    with pytest.raises(SkippedFile, match="no legible text"):
        read("blank.png", "image", tmp_path)


def test_a_damaged_image_is_skipped_with_the_reason(tmp_path: Path, cached: Path) -> None:
    data = (REALDOCS / "rapidocr-ch_en_num.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:200])
    with pytest.raises(SkippedFile, match="damaged or truncated image|not a readable image"):
        read("cut.jpg", "image", tmp_path)


def test_small_print_in_a_small_picture_is_read(cached: Path) -> None:
    """A 323 × 430 promotional picture: read at its own size, "-40°C" lost its minus sign."""
    text = "".join(block.text for block in read("rapidocr-ch_en_num.jpg", "image").blocks)
    assert "-40°C深度防冻不结冰" in text


def test_a_page_scanned_upside_down_is_still_read() -> None:
    """Most lines of an upside-down page read as noise; then the line-direction classifier turns them."""
    page = pdfium.PdfDocument(REALDOCS / "rapiddoc-hanyinzhang-seal.pdf")[0].render(scale=200 / 72).to_pil()
    page = page.crop((0, 0, page.width, page.height // 2))  # its top half: ~150 characters, half the work
    engine = ocr.engine()
    upright = "".join(line.text for line in engine.recognise(page))
    turned = "".join(line.text for line in engine.recognise(page.rotate(180)))
    assert "黄巍" in turned and len(turned) > 0.8 * len(upright)


def test_pages_read_side_by_side_come_back_as_read_one_at_a_time(cached: Path, tmp_path: Path, monkeypatch) -> None:
    """The 4-page seal scan as read one page at a time (the session's cache), against two readers with no
    cache; then with pages 2 and 4 missing from a cache, so that cached and recognised pages interleave: the same
    passages, pages in order."""
    monkeypatch.setattr(ocr, "PAGE_THREADS", 1)
    alone = read("rapiddoc-hanyinzhang-seal.pdf", "pdf")
    monkeypatch.setattr(ocr, "PAGE_THREADS", 2)
    done: list[tuple[int, int]] = []
    ocr.configure(OcrOptions(cache=tmp_path / "ocr.sqlite"), lambda page, total: done.append((page, total)))
    assert read("rapiddoc-hanyinzhang-seal.pdf", "pdf") == alone
    assert done == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with sqlite3.connect(tmp_path / "ocr.sqlite") as db:
        db.execute("DELETE FROM pages WHERE key LIKE '%:2:%' OR key LIKE '%:4:%'")
    assert read("rapiddoc-hanyinzhang-seal.pdf", "pdf") == alone
