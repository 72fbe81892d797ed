"""Pictures (photos of notices, screenshots, scanned pages saved as images) read by OCR: one page per image, or
per frame of a multi-page TIFF or GIF; a phone photo turned upright by its EXIF orientation first. A citation
names the page and the box of the recognised region, in the image's pixels."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .base import Extraction, Reader, SkippedFile
from .ocr import fit, layout_lines, page_blocks, recognise_pages

MAX_PIXELS = 120_000_000  # a 12,000 × 10,000 scan; a bigger "image" is a decompression bomb
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own check, at our limit (its default, 89 Mpx, is a 9,500² scan)


class ImageReader(Reader):
    name = "image"
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")

    def sniff(self, head: bytes) -> bool:
        return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF8", b"BM")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        )

    def read(self, data: bytes, name: str) -> Extraction:
        image = self._open(data)
        count = getattr(image, "n_frames", 1)

        def render(number: int):
            def page() -> tuple[Image.Image, float]:
                image.seek(number - 1)  # frames one at a time: a 300-page TIFF is never all in memory
                return fit(ImageOps.exif_transpose(image).convert("RGB"))

            return page

        pages, blocks = [], []
        try:
            for number, lines in recognise_pages(data, [(n, render(n)) for n in range(1, count + 1)]):
                width = max((line.box[2] for line in lines), default=1.0)  # the text's extent, after EXIF turns
                ordered = layout_lines(lines, width)
                pages.append([line.text for line in ordered])
                blocks += page_blocks(ordered, number)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise SkippedFile(f"a damaged or truncated image ({exc})") from exc
        if not blocks:
            raise SkippedFile("an image with no legible text in it")
        return Extraction(pages, blocks, {}, unit="page", encoding="ocr", ocr="ocr")

    def _open(self, data: bytes) -> Image.Image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise SkippedFile(f"not a readable image ({exc})") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise SkippedFile(f"a damaged or truncated image ({exc})") from exc
        if image.width * image.height > MAX_PIXELS:
            raise SkippedFile(f"an image of {image.width} × {image.height} pixels, too large to read")
        return image
