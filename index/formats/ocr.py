"""OCR for pages without a usable text layer (scans, photos, fonts without a Unicode map): an engine behind a tiny
base class, results cached by file digest, page and engine version, and the recognised lines grouped into
paragraphs in reading order (`layout`) with the box each one came from.

The engine is RapidOCR (PP-OCRv4 on ONNX Runtime, Apache-2.0, models inside its wheel): measured against
Tesseract 5 with chi_sim (bench/ocr.py, docs/benchmarks.md "OCR engines"): 0.8 % character errors on clean
pages against 10.7 %, 6.4 % on degraded photos against 96 %, and 9-19× faster on 2 cores. Reading happens in
the worker process of `index/isolation.py`, which sets the options and the progress callback with `configure`."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Block, SkippedFile, join_lines, tidy
from .layout import Line, paragraphs, reading_order

# Pages a file may have OCRed: at 2-6 s a page (a real scan, a dense A4 page; bench/ocr.py), 100 pages fit
# within the per-file time limit (index/isolation.py); more is a book to split or pre-OCR.
OCR_MAX_PAGES = int(os.environ.get("WENDA_OCR_MAX_PAGES", "100"))
MAX_SIDE = 2000  # pixels: RapidOCR scales every page to this longest side, so rendering bigger is wasted work
DPI = 200  # a scan rendered finer than this gains nothing at MAX_SIDE
ENGINE_PACKAGE = "rapidocr-onnxruntime"
TEXT_SCORE = 0.5  # a recognised line below this score is noise (RapidOCR's own default)
SMALL_SIDE = 1000  # pixels: a picture whose longest side is under this is read at twice its size
SETTINGS = "nocls1-small1000"  # part of the cache key: pages read with other engine settings are read again


@dataclass(frozen=True)
class OcrOptions:
    """Where OCR results are cached (None: not cached), how many pages one file may have OCRed, and whether OCR
    runs at all (WENDA_OCR=off: scans are skipped with a reason, as before OCR was built in)."""

    cache: Path | None = None
    max_pages: int = OCR_MAX_PAGES
    enabled: bool = os.environ.get("WENDA_OCR", "on").lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class OcrLine:
    """A recognised line and its box (x0, top, x1, bottom) in the page's own units (PDF points, image pixels)."""

    text: str
    box: tuple[float, float, float, float]
    score: float


_options = OcrOptions()
_progress: Callable[[int, int], None] | None = None


def configure(options: OcrOptions, progress: Callable[[int, int], None] | None = None) -> None:
    """Set this process's OCR options and the callback told (pages done, pages in all) during a long read."""
    global _options, _progress
    _options, _progress = options, progress


class OcrEngine:
    """One OCR engine: `recognise` gives the lines of an RGB image, in pixels; `version` keys the cache."""

    name: str = ""
    version: str = ""

    def recognise(self, image: Image.Image) -> list[OcrLine]:
        raise NotImplementedError


class RapidOcr(OcrEngine):
    """RapidOCR 1.4 (PP-OCRv4 mobile detection and recognition) on ONNX Runtime.

    Settings measured on rendered A4 pages with known text (`bench/ocr.py --settings`): the line-direction
    classifier is off, because on upright pages it turned 2-3 of 37 lines upside down (character errors 9.4 %
    with it, 0.8 % without); it is asked only where most detected lines read badly (a page scanned upside
    down). One line per recognition batch: a batch is padded to its widest line (six: 2.8 s a page, one: 2.2).
    `threads` caps ONNX Runtime's threads (None: one per core), for engines that read pages side by side."""

    name = "rapidocr"

    def __init__(self, threads: int | None = None) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.version = engine_version() or ""
        self._engine = RapidOCR(
            max_side_len=MAX_SIDE,
            use_cls=False,
            rec_batch_num=1,
            **({"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads else {}),
        )

    def recognise(self, image: Image.Image) -> list[OcrLine]:
        # a small picture (a web banner, a thumbnail) is enlarged first: its small print was misread at its own
        # size (a promotional image's "-40°C" read as "40°C"), and enlarging costs little at this size
        factor = 2 if max(image.size) < SMALL_SIDE else 1
        if factor > 1:
            image = image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)
        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # it expects OpenCV's BGR
        found = self._read(pixels, turn_lines=False)
        if len(found) >= 3 and sum(line.score >= TEXT_SCORE for line in found) < len(found) / 2:
            turned = self._read(pixels, turn_lines=True)
            if _weight(turned) > _weight(found):
                found = turned
        return [
            OcrLine(line.text, tuple(v / factor for v in line.box), line.score)
            for line in found
            if line.score >= TEXT_SCORE and line.text
        ]

    def _read(self, pixels: np.ndarray, turn_lines: bool) -> list[OcrLine]:
        found, _ = self._engine(pixels, use_cls=turn_lines, text_score=0.0)
        lines = []
        for points, text, score in found or []:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            # 丶 (a dictionary radical, not a word) is how PP-OCR reads the enumeration comma 、
            lines.append(OcrLine(tidy(text.replace("丶", "、")), (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return lines


def _weight(lines: list[OcrLine]) -> float:
    """Characters read with confidence: how two readings of one page are compared."""
    return sum(len(line.text) * line.score for line in lines if line.score >= TEXT_SCORE)


_engine: OcrEngine | None = None


def engine() -> OcrEngine | None:
    """The OCR engine of this install, loaded once; None where it is not installed (a minimal install)."""
    global _engine
    if _engine is None:
        try:
            _engine = RapidOcr()
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("rapidocr"):
                raise  # installed but broken: the reader's failure, with its reason
            return None
    return _engine


# Pages of one file read side by side, each by its own single-threaded engine: recognition runs one short line at
# a time, too little work to keep two threads busy, so two pages at once on two cores read 0.52-0.62 pages/s
# against 0.41-0.44 one page at a time with two threads (dense A4 pages; bench/ocr.py, "pages side by side").
PAGE_THREADS = max(1, min(len(os.sched_getaffinity(0)), 4))
_pool: list[OcrEngine] = []


def engine_pool(size: int) -> list[OcrEngine]:
    """`size` single-threaded engines (loaded once, kept), for pages read side by side."""
    while len(_pool) < size:
        _pool.append(RapidOcr(threads=1))
    return _pool[:size]


def engine_version() -> str | None:
    """The installed engine's name and version (what the cache is keyed by), without loading its models."""
    try:
        return f"{ENGINE_PACKAGE} {version(ENGINE_PACKAGE)}"
    except PackageNotFoundError:
        return None


def unavailable() -> str | None:
    """Why scans cannot be read here, or None when they can."""
    if not _options.enabled:
        return "OCR is turned off (WENDA_OCR=off)"
    if engine_version() is None:
        return "no OCR engine is installed (pip install rapidocr-onnxruntime)"
    return None


class OcrCache:
    """Recognised lines by (file digest, page, engine version): a rebuild never OCRs the same page twice."""

    def __init__(self, path: Path | None) -> None:
        self.db: sqlite3.Connection | None = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, lines TEXT NOT NULL)")
        except sqlite3.Error:
            self.db = None  # a damaged or unwritable cache only costs time: OCR again

    def get(self, key: str) -> list[OcrLine] | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute("SELECT lines FROM pages WHERE key = ?", (key,)).fetchone()
            return [OcrLine(text, tuple(box), score) for text, box, score in json.loads(row[0])] if row else None
        except (sqlite3.Error, ValueError, TypeError):
            return None

    def put(self, key: str, lines: list[OcrLine]) -> None:
        if self.db is None:
            return
        try:
            rows = [[line.text, list(line.box), line.score] for line in lines]  # rounded by `_in_page_units`
            with self.db:
                row = (key, json.dumps(rows, ensure_ascii=False))
                self.db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?)", row)
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def recognise_pages(
    data: bytes, pages: list[tuple[int, Callable[[], tuple[Image.Image, float]]]]
) -> Iterator[tuple[int, list[OcrLine]]]:
    """(page number, lines) for each page to OCR, given as (number, render) where render gives the page's image
    and its pixels per page unit; boxes come back in page units. SkippedFile when OCR cannot run here or the
    file has more such pages than allowed."""
    reason = unavailable()
    if reason:
        raise SkippedFile(f"its text is only in images and {reason}")
    if len(pages) > _options.max_pages:
        raise SkippedFile(
            f"{len(pages)} pages need OCR, over the limit of {_options.max_pages} (set WENDA_OCR_MAX_PAGES, "
            "or split the file)"
        )
    digest = hashlib.sha256(data).hexdigest()
    store = OcrCache(_options.cache)
    try:
        keys = {number: f"{digest}:{number}:{engine_version()}:{MAX_SIDE}:{SETTINGS}" for number, _ in pages}
        known = {number: store.get(key) for number, key in keys.items()}
        todo = [(number, render) for number, render in pages if known[number] is None]
        read = _read_pages(todo)
        for done, (number, _) in enumerate(pages, start=1):
            lines = known[number]
            if lines is None:
                number, lines = next(read)
                store.put(keys[number], lines)
            if _progress is not None and len(pages) > 1:
                _progress(done, len(pages))
            yield number, lines
    finally:
        store.close()


def _read_pages(
    pages: list[tuple[int, Callable[[], tuple[Image.Image, float]]]],
) -> Iterator[tuple[int, list[OcrLine]]]:
    """(page number, lines in page units) for each page, in order. One page is read by the shared engine on every
    core; several side by side (PAGE_THREADS), each by its own engine, rendered here one at a time (PDFium is not
    thread-safe) while the others are read. The models load at the first page: a cached rebuild loads none."""
    width = min(len(pages), PAGE_THREADS)
    if width < 2:  # (no page: no model loaded) one page, or one core: the shared engine on every core
        shared = engine() if pages else None
        if pages and shared is None:
            raise SkippedFile("its text is only in images and the OCR engine failed to load")
        for number, render in pages:
            yield number, _in_page_units(shared, *render())
        return
    idle: queue.SimpleQueue[OcrEngine] = queue.SimpleQueue()
    for reader in engine_pool(width):
        idle.put(reader)

    def read(image: Image.Image, scale: float) -> list[OcrLine]:
        reader = idle.get()
        try:
            return _in_page_units(reader, image, scale)
        finally:
            idle.put(reader)

    with ThreadPoolExecutor(width, thread_name_prefix="ocr") as pool:
        waiting: deque[tuple[int, Future[list[OcrLine]]]] = deque()
        for number, render in pages:
            waiting.append((number, pool.submit(read, *render())))
            if len(waiting) > width:  # one page rendered ahead of the readers, no more
                number, future = waiting.popleft()
                yield number, future.result()
        while waiting:
            number, future = waiting.popleft()
            yield number, future.result()


def _in_page_units(reader: OcrEngine, image: Image.Image, scale: float) -> list[OcrLine]:
    """The lines `reader` finds in `image`, in page units, rounded as the cache keeps them: a page read now and
    the same page read from the cache give the same passages and boxes."""
    return [
        OcrLine(line.text, tuple(round(v / scale, 1) for v in line.box), round(line.score, 3))
        for line in reader.recognise(image)
    ]


def fit(image: Image.Image) -> tuple[Image.Image, float]:
    """An image at most MAX_SIDE pixels on its longest side, and the factor it was scaled by."""
    scale = min(1.0, MAX_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image, scale


def layout_lines(lines: list[OcrLine], width: float) -> list[Line]:
    """Recognised lines in reading order (columns one after the other), as layout's lines."""
    words = [
        {
            "text": line.text,
            "x0": line.box[0],
            "x1": line.box[2],
            "top": line.box[1],
            "bottom": line.box[3],
            "sizes": [max(line.box[3] - line.box[1], 1.0) * 0.8],  # a line box is ~1.25× the type size
        }
        for line in lines
    ]
    return reading_order(words, width)


def page_blocks(lines: list[Line], number: int) -> list[Block]:
    """One page's paragraphs as blocks citing the page and the box (x0, top, x1, bottom) of the recognised
    region, in the page's own units."""
    blocks = []
    for first, count in paragraphs(lines):
        region = lines[first : first + count]
        box = [
            round(min(line.x0 for line in region)),
            round(min(line.top for line in region)),
            round(max(line.x1 for line in region)),
            round(max(line.bottom for line in region)),
        ]
        text = join_lines([line.text for line in region])
        blocks.append(Block(text, first + 1, lines=count, where={"page": number, "box": box}))
    return blocks
