"""Images (PNG, JPEG, TIFF with its pages): every page is read by OCR, in the workers.

At intake each frame is checked by its declared size first (a decompression bomb is refused before a
pixel is decoded), then decoded once, so that a truncated or damaged file is refused at upload rather
than discovered by a worker.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from workflows.graph.text import _

from .base import IMAGE_TYPES, DocumentError, Limits, Page


def _open(data: bytes, name: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DocumentError(_("'%(name)s' declares more pixels than an image can safely have (%(error)s): refused "
                              "as a possible decompression bomb.", name=name, error=str(exc)[:200])) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DocumentError(_("'%(name)s' is not an image that can be read: upload PNG, JPEG or TIFF.",
                              name=name)) from None
    if image.format not in IMAGE_TYPES:
        raise DocumentError(_("'%(name)s' is a %(format)s image: upload PNG, JPEG or TIFF.", name=name,
                              format=image.format or "?"))
    return image


def _check_pixels(image: Any, name: str, frame: int, limits: Limits) -> None:
    width, height = image.size
    if width * height > limits.max_pixels:
        raise DocumentError(_("'%(name)s' (page %(page)s) is %(width)s × %(height)s pixels, %(pixels)s megapixels; "
                              "the limit is %(limit)s. Scan it at a lower resolution (300 dpi is plenty).",
                              name=name, page=frame, width=width, height=height,
                              pixels=f"{width * height / 1e6:.0f}", limit=f"{limits.max_pixels / 1e6:.0f}"))


def read_image(data: bytes, name: str, limits: Limits,
               take_pages: Callable[[int, str], None]) -> tuple[str, list[Page]]:
    """(content type, one page per frame, each to be read by OCR)."""
    from PIL import Image

    pages = []
    with _open(data, name) as image:
        content_type = IMAGE_TYPES[image.format]
        frame = 0
        while True:
            try:
                image.seek(frame)
            except EOFError:
                break
            except (OSError, ValueError, SyntaxError) as exc:
                raise _damaged(name, frame + 1, exc) from None
            frame += 1
            take_pages(1, name)
            _check_pixels(image, name, frame, limits)
            try:
                if image.format == "JPEG":  # decoding at 1/8 scale still reads the whole stream
                    image.draft("L", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
                image.load()
            except Image.DecompressionBombError as exc:
                raise DocumentError(_("'%(name)s' (page %(page)s) declares more pixels than an image can safely "
                                      "have (%(error)s).", name=name, page=frame, error=str(exc)[:200])) from None
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise _damaged(name, frame, exc) from None
            pages.append(Page(frame, "", needs_ocr=True))
    return content_type, pages


def _damaged(name: str, frame: int, exc: BaseException) -> DocumentError:
    return DocumentError(_("'%(name)s' is damaged at page %(page)s (%(error)s). Scan or export it again.",
                           name=name, page=frame, error=f"{exc.__class__.__name__}: {str(exc)[:200]}"))


def frames(data: bytes, numbers: list[int], limits: Limits) -> Iterator[tuple[int, Any]]:
    """(page number, PIL image in RGB) for each frame asked for (workers, for OCR)."""
    with _open(data, "image") as image:
        for number in numbers:
            image.seek(number - 1)
            _check_pixels(image, "image", number, limits)
            yield number, image.convert("RGB")
