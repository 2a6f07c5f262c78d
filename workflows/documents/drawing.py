"""What reading and drawing a PDF's pages will cost, worked out before any page is read.

pypdf reads a page's content and, at each `Do` of a form XObject, the form's content again, forms drawn
inside forms included; pdfium draws the same instructions when a page is rendered for OCR. A few KB of
forms that each draw the next one ten times make gigabytes of instructions (hours of one core for a file
of 2 KB), and one stream of a few MB shared by every page is read once per page. pdfium also decodes
every image a page draws whole, at the size the image declares: 2 MB of deflated zeros declaring
45,000 × 45,000 pixels took 2 GB of a worker's memory.

So a page's work is its content plus, for each form its resources hold, the form's own work times the
number of times the form's name appears in the content (an upper bound: a name inside a string counts
too), and every image it can draw (from its resources or inline) must be within Limits.max_pixels.
All the pages of an upload share Limits.max_page_content; one file gets at most max_ratio times its
size (at least Limits.page_content_floor). Each form is worked out once per file, so counting costs one
pass over the distinct streams, within the same bound. Pure Python (pypdf objects in, DocumentError out).
"""

from __future__ import annotations

import re
from typing import Any

from workflows.graph.text import _

from .base import DocumentError, Limits

# A name token of a content stream, ended where pypdf ends it (NameObject.delimiter_pattern).
_DELIMITER = rb"\s()<>\[\]{}/%"
_ESCAPED_NAME = re.compile(rb"/[^" + _DELIMITER + rb"]*#[^" + _DELIMITER + rb"]*")
# An inline image's dictionary (BI … ID) and the numbers it gives its names.
_INLINE_IMAGE = re.compile(rb"(?<![^" + _DELIMITER + rb"])BI(?![^" + _DELIMITER + rb"])(.{0,4096}?)"
                           rb"(?<![^" + _DELIMITER + rb"])ID(?![^" + _DELIMITER + rb"])", re.DOTALL)
_NAMED_NUMBER = re.compile(rb"(/[^" + _DELIMITER + rb"]*)\s*([0-9]+)")
_PARENT_HOPS = 64


class DrawingBudget:
    """The work of an upload's PDF pages so far; `take` each page before reading any (see above)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.limit = min(limits.max_inflated, limits.max_page_content)
        self.used = 0
        self.file_limit, self.file_used = self.limit, 0
        self._forms: dict[int, tuple[Any, int]] = {}  # id(form): (form, its work); the form keeps the id alive
        self._open: set[int] = set()
        self._where = ("", 0)  # the file and page being counted, for a refusal's message

    def start(self, size: int) -> None:
        """A new file of `size` bytes: its own bound (max_ratio times its size, at least the floor)."""
        self._forms.clear()  # forms are worked out once per file (and their readers let go after it)
        self.file_limit = min(self.limit, max(self.limits.page_content_floor, self.limits.max_ratio * size))
        self.file_used = 0

    def take(self, page: Any, name: str, number: int) -> None:
        self._where = (name, number)
        work = self._work(page.get_contents(), resources_of(page))
        for appearance in _appearances(page):  # pdfium draws each annotation's appearance once
            work += self._form(appearance)
        self.used += work
        self.file_used += work
        if self.used > self.limit or self.file_used > self.file_limit:
            limit = self.file_limit if self.file_used > self.file_limit else self.limit
            raise DocumentError(_("The pages of '%(name)s' inflate to more than %(limit)s MB by page %(page)s: "
                                  "refused as a possible PDF bomb.", name=name,
                                  limit=f"{limit / 1e6:.0f}", page=number))

    def _work(self, content: Any, resources: Any) -> int:
        if content is None:
            return 0
        data = content.get_data()
        for width, height in _inline_sizes(data):
            self._check_pixels(width, height)
        forms, images = xobjects(resources)
        for image in images:
            self._check_image(image)
        work = len(data)
        if not forms:
            return work
        for key, times in name_counts(data, list(forms)).items():
            if times:
                work += times * self._form(forms[key])
                if work > self.file_limit:  # over already: no need to know by how much
                    return work
        return work

    def _form(self, form: Any) -> int:
        from pypdf.errors import LimitReachedError

        key = id(form)
        if key in self._forms:
            return self._forms[key][1]
        if key in self._open:
            raise LimitReachedError("form XObjects that draw each other in a circle")
        self._open.add(key)
        try:
            work = self._work(form, resources_of(form))
        finally:
            self._open.discard(key)
        self._forms[key] = (form, work)
        return work

    def _check_image(self, image: Any) -> None:
        """The image and its masks (pdfium decodes those too) within max_pixels."""
        for part in (image, _resolved(image.get("/SMask")), _resolved(image.get("/Mask"))):
            if hasattr(part, "get"):
                self._check_pixels(_resolved(part.get("/Width")), _resolved(part.get("/Height")))

    def _check_pixels(self, width: Any, height: Any) -> None:
        if not (isinstance(width, int) and isinstance(height, int)) or width * height <= self.limits.max_pixels:
            return
        name, page = self._where
        raise DocumentError(_("'%(name)s' (page %(page)s) is %(width)s × %(height)s pixels, %(pixels)s megapixels; "
                              "the limit is %(limit)s. Scan it at a lower resolution (300 dpi is plenty).",
                              name=name, page=page, width=width, height=height,
                              pixels=f"{width * height / 1e6:.0f}", limit=f"{self.limits.max_pixels / 1e6:.0f}"))


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def resources_of(obj: Any) -> Any:
    """The /Resources of a page or a form, inherited from its /Parent as pypdf inherits them."""
    for _hop in range(_PARENT_HOPS):
        if not hasattr(obj, "get"):
            return None
        resources = obj.get("/Resources")
        if resources is not None:
            resources = _resolved(resources)
            return resources if hasattr(resources, "get") else None
        parent = obj.get("/Parent")
        if parent is None:
            return None
        obj = _resolved(parent)
    return None


def _appearances(page: Any) -> list[Any]:
    """The normal appearance streams of a page's annotations (a stamp, a signature, a filled field):
    forms pdfium draws with the page, which pypdf's text does not read."""
    annotations = _resolved(page.get("/Annots"))
    if not isinstance(annotations, list):
        return []
    found = []
    for annotation in map(_resolved, annotations):
        appearance = _resolved(annotation.get("/AP")) if hasattr(annotation, "get") else None
        normal = _resolved(appearance.get("/N")) if hasattr(appearance, "get") else None
        if hasattr(normal, "get_data"):
            found.append(normal)
        elif hasattr(normal, "values"):  # one appearance per state (a checkbox's on and off)
            found += [state for state in map(_resolved, normal.values()) if hasattr(state, "get_data")]
    return found


def xobjects(resources: Any) -> tuple[dict[str, Any], list[Any]]:
    """({name: form XObject}, [image XObjects]) of a resource dictionary."""
    found = _resolved(resources.get("/XObject")) if hasattr(resources, "get") else None
    if not hasattr(found, "items"):
        return {}, []
    forms, images = {}, []
    for key, ref in found.items():
        obj = _resolved(ref)
        if not hasattr(obj, "get"):
            continue
        if obj.get("/Subtype") == "/Form" and hasattr(obj, "get_data"):
            forms[str(key)] = obj
        elif obj.get("/Subtype") == "/Image":
            images.append(obj)
    return forms, images


def decode_name(token: bytes) -> str:
    """A name token as pypdf decodes it (#xx escapes, then its charsets in order)."""
    from pypdf.generic import NameObject

    raw = NameObject.unnumber(token)
    for charset in NameObject.CHARSETS:
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return raw.decode("charmap")


def name_counts(data: bytes, keys: list[str]) -> dict[str, int]:
    """How many times each name in `keys` ('/Fm0') appears as a name token in `data`."""
    from pypdf.generic import NameObject

    spellings: dict[bytes, str] = {}
    for key in keys:
        for charset in NameObject.CHARSETS:
            try:
                spellings.setdefault(key[1:].encode(charset), key)
            except UnicodeEncodeError:
                continue
    counts = dict.fromkeys(keys, 0)
    plain = re.compile(rb"/(" + b"|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True))
                       + rb")(?![^" + _DELIMITER + rb"])")
    for spelled in plain.findall(data):
        counts[spellings[spelled]] += 1
    for token in _ESCAPED_NAME.findall(data):  # a name written with #xx escapes: /F#6Dm0 is /Fm0
        key = decode_name(token)
        if key in counts:
            counts[key] += 1
    return counts


def _inline_sizes(data: bytes) -> list[tuple[int, int]]:
    """(width, height) of every inline image (BI /W … /H … ID) the content holds."""
    if b"BI" not in data:
        return []
    sizes = []
    for header in _INLINE_IMAGE.findall(data):
        numbers = {decode_name(name): int(value) for name, value in _NAMED_NUMBER.findall(header)}
        width, height = numbers.get("/W", numbers.get("/Width")), numbers.get("/H", numbers.get("/Height"))
        if width is not None and height is not None:
            sizes.append((width, height))
    return sizes
