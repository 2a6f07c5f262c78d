"""Pages drawn for OCR in a child process that a page cannot hold for ever or blow up.

pdfium draws what a page says, however it says it: a 1.3 KB file of nested tiling patterns with cells
a hundredth of a point wide takes it a minute a page, and nothing in the file's size or its drawing
instructions (one rectangle) warns of it; Type3 fonts drawing glyphs that draw glyphs are the same
story. Counting every way a PDF can make pdfium work is a race we would lose, so the drawing happens in
a child process: each page within `Limits.render_seconds`, the child's address space within
`Limits.render_memory_mb` more than it started with. Past either, the child is killed and the page is
refused with the reason; the worker that asked goes on with its next document.

The child comes from a fork server (started once per process, pypdfium2 loaded there), not from a fork
of the worker: the worker runs ONNX Runtime's threads, and a fork of a threaded process may hang.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import threading
from collections.abc import Iterator
from typing import Any

from workflows.graph.text import _

from .base import DocumentError, Limits

_context: Any = None
_context_lock = threading.Lock()


def _fork_server() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["pypdfium2", "workflows.documents.render"])
            _context = context
    return _context


def _address_space() -> int:
    """This process's virtual size in bytes (Linux), or 0 when it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    return 0


def _draw(connection: Any, memory_bytes: int) -> None:
    """The child: receive the file and the pages, send back each page as (number, mode, size, pixels)."""
    import math

    with contextlib.suppress(ValueError, OSError):
        limit = _address_space() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    data, numbers, dpi, max_pixels = connection.recv_bytes(), *connection.recv()
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    for number in numbers:
        page = document[number - 1]
        width, height = page.get_size()  # points: 1/72 inch
        scale = dpi / 72
        pixels = width * height * scale * scale
        if pixels > max_pixels:
            scale *= math.sqrt(max_pixels / pixels)
        try:
            image = page.render(scale=scale, grayscale=True).to_pil()
        except MemoryError:
            connection.send(("memory", number))
            return
        finally:
            page.close()
        connection.send(("page", number, image.mode, image.size))
        connection.send_bytes(image.tobytes())
    document.close()
    connection.send(("done",))


def render_pages(data: bytes, numbers: list[int], limits: Limits) -> Iterator[tuple[int, Any]]:
    """(page number, PIL image in grey) for each of `numbers`, drawn by a child process within the limits;
    DocumentError saying which page and which limit when one is passed."""
    if not numbers:
        return
    from PIL import Image

    context = _fork_server()
    ours, theirs = context.Pipe()
    child = context.Process(target=_draw, args=(theirs, limits.render_memory_mb * 1024 * 1024), daemon=True)
    child.start()
    theirs.close()
    try:
        ours.send_bytes(data)
        ours.send((list(numbers), limits.render_dpi, limits.max_pixels))
        for number in numbers:
            message = _next(ours, child, number, limits)
            if message[0] == "memory":
                raise _too_big(number, limits)
            _, drawn, mode, size = message
            yield drawn, Image.frombytes(mode, size, ours.recv_bytes())
    finally:
        ours.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _next(connection: Any, child: Any, number: int, limits: Limits) -> tuple[Any, ...]:
    if not connection.poll(limits.render_seconds):
        raise DocumentError(_("page %(page)s takes more than %(seconds)s s to draw: the file fills it with "
                              "patterns or fonts too detailed to read. Print it to PDF again, or scan the paper.",
                              page=number, seconds=f"{limits.render_seconds:g}"))
    try:
        return connection.recv()
    except (EOFError, OSError):
        child.join(5)  # it died drawing the page: out of its memory, or pdfium crashed on the file
        raise _too_big(number, limits) from None


def _too_big(number: int, limits: Limits) -> DocumentError:
    return DocumentError(_("page %(page)s cannot be drawn within %(mb)s MB of memory: the file is damaged or "
                           "draws far more than a page. Print it to PDF again, or scan the paper.",
                           page=number, mb=limits.render_memory_mb))
