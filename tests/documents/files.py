"""Real documents made at test time: PDFs with a text layer (written object by object), scans (text
drawn with Pillow in a TrueType font, as a scanner would see a printed page), image-only PDFs, TIFFs
with several pages, ZIPs of them."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

STAMP = (2025, 3, 12, 9, 0, 0)
FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf")


def pdf_file(objects: list[bytes], root: int = 1, trailer: bytes = b"") -> bytes:
    """A PDF of these objects (numbered from 1), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, trailer,
                                                                                xref)
    return bytes(out)


def stream(data: bytes, compress: bool = True, extra: bytes = b"") -> bytes:
    if compress:
        data = zlib.compress(data)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _escape(text: str) -> bytes:
    return text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_pdf(pages: list[str]) -> bytes:
    """One page per string, its lines set in Helvetica: a PDF with a real text layer."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               b"/Encoding /WinAnsiEncoding >>"]
    kids = []
    for text in pages:
        lines = b" T* ".join(b"(%s) Tj" % _escape(line) for line in text.split("\n"))
        content = b"BT /F1 12 Tf 14 TL 72 720 Td " + lines + b" ET"
        objects.append(stream(content))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> "
                       b">> /Contents %d 0 R >>" % len(objects))
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    return pdf_file(objects)


def font(size: int):
    from PIL import ImageFont

    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)  # Pillow's own scalable font, when the system has none


def scan(lines: list[str], size: tuple[int, int] = (1240, 1754), mode: str = "L"):
    """A page as a 150-dpi scanner sees it: dark text on white, in a TrueType font."""
    from PIL import Image, ImageDraw

    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((110, 140 + row * 70), line, fill="black", font=font(40))
    return image


def image_bytes(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def scanned_pdf(pages: list[list[str]]) -> bytes:
    """An image-only PDF (Pillow writes each page as a picture): no text layer at all."""
    images = [scan(lines) for lines in pages]
    return image_bytes(images[0], "PDF", save_all=True, append_images=images[1:], resolution=150)


def tiff(pages: list[list[str]]) -> bytes:
    images = [scan(lines) for lines in pages]
    return image_bytes(images[0], "TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, STAMP), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
