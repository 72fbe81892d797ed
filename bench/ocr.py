"""OCR engines side by side: RapidOCR (the built-in engine) and Tesseract 5 (Debian's `tesseract-ocr` with
`chi_sim`), on pages with known text and on real scans.

    apt-get install --no-install-recommends fonts-arphic-uming tesseract-ocr tesseract-ocr-chi-sim
    .venv/bin/python -m pip install rapidfuzz       # the `bench` extra
    .venv/bin/python bench/ocr.py [--settings]

- Rendered pages: paragraphs of the bundled articles drawn on A4 at 300 dpi in a Song (serif) face, clean, and
  degraded as a phone photo is (150 dpi, turned 1.5°, blurred, noisy, JPEG quality 35); character error rate
  (edit distance / reference length, whitespace ignored) and seconds per page, medians.
- Real scans from ../shared/realdocs: seconds per page and whether each FACTS evidence string is recognised.
- The built-in engine's settings: each one undone in turn, on the clean rendered pages (table "ocr_settings").
- The cache: the same scan read twice through Wenda's PDF reader, cold and cached.
- Pages side by side: a 4-page scan read through the PDF reader one page at a time and pages in parallel.
Writes the tables "ocr", "ocr_settings" and "ocr_side_by_side" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rapidfuzz.distance import Levenshtein
from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.formats import BY_NAME, ocr  # noqa: E402
from wenda.index.formats.ocr import OcrOptions, RapidOcr  # noqa: E402
from wenda.retrieval import realdocs  # noqa: E402

FONT = Path("/usr/share/fonts/truetype/arphic/uming.ttc")
SCANS = ("mineru-small_ocr.pdf", "rapiddoc-hanyinzhang-seal.pdf")
PICTURES = ("unstructured-chi_sim_image.jpeg", "rapidocr-ch_en_num.jpg")


def tesseract(image: Image.Image) -> str:
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        image.save(handle.name)
        done = subprocess.run(["tesseract", handle.name, "-", "-l", "chi_sim+eng"], capture_output=True, text=True)
    return done.stdout


def engines() -> dict:
    rapid = RapidOcr()
    found = {"RapidOCR 1.4.4 (PP-OCRv4)": lambda image: "".join(line.text for line in rapid.recognise(image))}
    if shutil.which("tesseract"):
        found["Tesseract 5 chi_sim+eng"] = tesseract
    return found


def variants() -> dict:
    """The built-in engine as shipped, and with each of its chosen settings undone (docs/formats.md)."""
    from rapidocr_onnxruntime import RapidOCR

    def raw(comma: bool = True, **settings):  # one setting undone, the others as shipped
        engine = RapidOCR(max_side_len=ocr.MAX_SIDE, **settings)
        read = lambda image: "".join(text for _, text, _ in engine(np.asarray(image)[:, :, ::-1])[0] or [])  # noqa: E731
        return (lambda image: read(image).replace("丶", "、")) if comma else read

    shipped = RapidOcr()
    return {
        "as shipped": lambda image: "".join(line.text for line in shipped.recognise(image)),
        "line-direction classifier on": raw(use_cls=True, rec_batch_num=1),
        "6 lines a recognition batch (RapidOCR's default)": raw(use_cls=False, rec_batch_num=6),
        "丶 not read as 、": raw(comma=False, use_cls=False, rec_batch_num=1),
    }


def rendered_pages(count: int = 3) -> list[tuple[str, Image.Image, Image.Image]]:
    """(text, clean page, degraded page): seed paragraphs wrapped to an A4 page at 300 dpi, 12-point type."""
    files = sorted((ROOT / "corpus").glob("*.txt"))
    paragraphs = [line.strip() for path in files for line in path.read_text("utf-8").splitlines()]
    paragraphs = [p for p in paragraphs if len(p) > 60]
    font = ImageFont.truetype(str(FONT), 50)  # 12 pt at 300 dpi
    pages = []
    for number in range(count):
        image = Image.new("L", (2480, 3508), 255)
        draw = ImageDraw.Draw(image)
        y, lines = 250, []
        for paragraph in paragraphs[number * 12 :]:
            for start in range(0, len(paragraph), 38):  # 38 characters a line between 250 px margins
                if y > 3200:
                    break
                line = paragraph[start : start + 38]
                draw.text((250, y), line, font=font, fill=0)
                lines.append(line)
                y += 80
        rng = random.Random(number)
        degraded = image.resize((1240, 1754)).rotate(1.5, fillcolor=235).filter(ImageFilter.GaussianBlur(1.1))
        degraded = Image.eval(degraded, lambda v: max(0, min(255, int(v * 0.8 + 30))))  # uneven, greyish paper
        noisy = degraded.copy()
        pixels = noisy.load()
        for _ in range(40_000):
            x, yy = rng.randrange(noisy.width), rng.randrange(noisy.height)
            pixels[x, yy] = rng.choice((40, 200))
        buffer = io.BytesIO()
        noisy.save(buffer, "JPEG", quality=35)
        pages.append(("".join(lines), image.convert("RGB"), Image.open(buffer).convert("RGB")))
    return pages


def cer(reference: str, text: str) -> float:
    """Edit distance over the reference's length, after NFKC (a full-width comma read as "," is no error)
    and without whitespace."""
    a, b = ("".join(unicodedata.normalize("NFKC", t).split()) for t in (reference, text))
    return Levenshtein.distance(a, b) / max(len(a), 1)


def scan_images() -> list[tuple[str, Image.Image]]:
    images = []
    for name in SCANS:
        pdf = pdfium.PdfDocument(str(realdocs.REALDOCS / name))
        for number in range(len(pdf)):
            page = pdf[number]
            scale = min(200 / 72, 2000 / max(page.get_width(), page.get_height()))
            images.append((name, page.render(scale=scale).to_pil().convert("RGB")))
    images += [(name, Image.open(realdocs.REALDOCS / name).convert("RGB")) for name in PICTURES]
    return images


def timed(run, image: Image.Image) -> tuple[str, float]:
    started = time.perf_counter()
    text = run(image)
    return text, time.perf_counter() - started


def cache_speedup() -> tuple[float, float]:
    """Seconds to read the 4-page seal scan through the PDF reader, cold and then from the OCR cache."""
    data = (realdocs.REALDOCS / "rapiddoc-hanyinzhang-seal.pdf").read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        ocr.configure(OcrOptions(cache=Path(folder) / "ocr.sqlite"))
        times = []
        for _ in range(2):
            started = time.perf_counter()
            BY_NAME["pdf"].read(data, "seal.pdf")
            times.append(time.perf_counter() - started)
        ocr.configure(OcrOptions())
    return times[0], times[1]


def side_by_side(pages: list[tuple[str, Image.Image, Image.Image]], rounds: int = 3) -> dict:
    """Pages per second over the clean pages saved as one image-only PDF and read through Wenda's PDF reader
    (rendering, OCR, layout), one page at a time with every core against pages side by side (PAGE_THREADS);
    medians of `rounds` alternating runs, no cache."""
    buffer = io.BytesIO()
    images = [page for _, page, _ in pages]
    images[0].save(buffer, "PDF", resolution=300, save_all=True, append_images=images[1:])
    data, width = buffer.getvalue(), ocr.PAGE_THREADS
    speeds: dict[int, list[float]] = {1: [], width: []}
    for _ in range(rounds):
        for threads in speeds:
            ocr.PAGE_THREADS = threads
            started = time.perf_counter()
            BY_NAME["pdf"].read(data, "dense.pdf")
            speeds[threads].append(len(images) / (time.perf_counter() - started))
    ocr.PAGE_THREADS = width
    row = {
        "pages": len(images),
        "one_at_a_time": round(statistics.median(speeds[1]), 2),
        "side_by_side": round(statistics.median(speeds[width]), 2),
        "readers": width,
    }
    print("dense scan through the PDF reader, pages/s:", row, flush=True)
    rows = save("ocr_side_by_side", row, ())
    update_table(
        "ocr_side_by_side",
        [
            ("dense A4 pages in one scanned PDF", lambda r: str(r["pages"])),
            ("pages/s, one at a time (every core)", lambda r: str(r["one_at_a_time"])),
            ("pages/s, side by side", lambda r: f"{r['side_by_side']} ({r['readers']} readers)"),
        ],
        rows,
    )
    return rows


def settings_table(pages: list[tuple[str, Image.Image, Image.Image]]) -> None:
    rows = []
    for name, run in variants().items():
        clean = [timed(run, page) + (text,) for text, page, _ in pages]
        row = {
            "variant": name,
            "cer_clean": round(statistics.median(cer(ref, text) for text, _, ref in clean), 4),
            "clean_page_s": round(statistics.median(s for _, s, _ in clean), 2),
        }
        print(row, flush=True)
        rows = save("ocr_settings", row, ("variant",))
    update_table(
        "ocr_settings",
        [
            ("RapidOCR", lambda r: r["variant"]),
            ("CER, clean 300 dpi pages", lambda r: f"{r['cer_clean']:.1%}"),
            ("s per clean A4 page", lambda r: f"{r['clean_page_s']}"),
        ],
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", action="store_true", help="only the table of the built-in engine's settings")
    parser.add_argument("--pages", action="store_true", help="only the pages/s of a scan, pages side by side or not")
    args = parser.parse_args()
    side_by_side(rendered_pages(4))
    if args.pages:
        return 0
    pages = rendered_pages()
    settings_table(pages)
    if args.settings:
        return 0
    scans = scan_images()
    evidence = {fact.file: realdocs.plain(fact.evidence) for fact in realdocs.facts() if fact.file in SCANS + PICTURES}
    rows = []
    for name, run in engines().items():
        clean = [timed(run, page) + (text,) for text, page, _ in pages]
        photo = [timed(run, page) + (text,) for text, _, page in pages]
        real = [(file, *timed(run, image)) for file, image in scans]
        recognised = "".join(realdocs.plain(text) for _, text, _ in real)
        row = {
            "engine": name,
            "cer_clean": round(statistics.median(cer(ref, text) for text, _, ref in clean), 4),
            "cer_photo": round(statistics.median(cer(ref, text) for text, _, ref in photo), 4),
            "clean_page_s": round(statistics.median(s for _, s, _ in clean), 2),
            "scan_page_s": round(statistics.median(s for _, _, s in real), 2),
            "evidence": f"{sum(e in recognised for e in evidence.values())}/{len(evidence)}",
        }
        print(row, flush=True)
        rows = save("ocr", row, ("engine",))
    cold, warm = cache_speedup()
    print(f"seal scan through the PDF reader: {cold:.2f} s cold, {warm:.3f} s cached ({cold / warm:.0f}×)")
    update_table(
        "ocr",
        [
            ("engine", lambda r: r["engine"]),
            ("CER, clean 300 dpi pages", lambda r: f"{r['cer_clean']:.1%}"),
            ("CER, degraded photos", lambda r: f"{r['cer_photo']:.1%}"),
            ("s per clean A4 page", lambda r: f"{r['clean_page_s']}"),
            ("s per real scan page", lambda r: f"{r['scan_page_s']}"),
            ("FACTS evidence recognised", lambda r: r["evidence"]),
        ],
        rows,
    )
    save("ocr_cache", {"cold_s": round(cold, 2), "cached_s": round(warm, 3)}, ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
