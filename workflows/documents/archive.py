"""ZIP archives: the zip-bomb check (shared with XLSX intake, which words its own refusals) and the
members of a ZIP of documents.

Python's zipfile never returns more of a member than the size it declares (a member that lies fails
its CRC check), so the sizes declared in the central directory bound what reading can cost: they are
checked before anything is inflated. It does inflate more than it returns, though: `ZipFile.read`
asks zlib for up to 1 GB in one call and cuts the result to the declared size afterwards (openpyxl
reads an XLSX's styles and strings that way: 60 KB of upload held 144 MB), and bzip2 and LZMA members
are inflated with no bound at all. So a member whose packed size is larger than its declared size
allows (deflate adds at most a few bytes per 16 KB block to what it cannot compress) is refused from
the directory, members are read 1 MB at a time, and only stored or deflated ones (what every
archiver writes by default) are taken.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

from workflows.graph.text import _

from .base import DocumentError, Limits

# Files an archiver or a desktop adds beside the documents (macOS resource forks, Finder and Explorer
# metadata): skipped, so that a ZIP made on a Mac is not refused for a file nobody put in it.
_NOISE_FOLDER = "__MACOSX/"
_CHUNK = 1024 * 1024
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_NOISE_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ArchiveProblem:
    """What is wrong with an archive's declared sizes: kind is "parts", "inflated", "ratio" or "lies"."""

    kind: str
    count: int = 0
    inflated: int = 0
    part: str = ""
    packed: int = 0
    size: int = 0

    @property
    def ratio(self) -> int:
        return self.size // max(self.packed, 1)


def archive_problem(parts: list[zipfile.ZipInfo], *, max_parts: int, max_inflated: int, max_ratio: int,
                    ratio_from: int) -> ArchiveProblem | None:
    """Too many members, too much inflated in all, or a member that inflates more than max_ratio times
    its packed size (counted from ratio_from bytes up: tiny members compress arbitrarily well)."""
    if len(parts) > max_parts:
        return ArchiveProblem("parts", count=len(parts))
    inflated = sum(info.file_size for info in parts)
    if inflated > max_inflated:
        return ArchiveProblem("inflated", inflated=inflated)
    for info in parts:
        if info.compress_size > most_packed(info.file_size):
            return ArchiveProblem("lies", part=info.filename, packed=info.compress_size, size=info.file_size)
        if info.file_size > ratio_from and info.file_size > max_ratio * max(info.compress_size, 1):
            return ArchiveProblem("ratio", part=info.filename, packed=info.compress_size, size=info.file_size)
    return None


def most_packed(size: int) -> int:
    """The largest a member of `size` bytes can be once deflated (or stored): deflate's stored blocks
    add 5 bytes per 16 KB at worst; a margin for headers and encryption's 12 bytes."""
    return size + 5 * (size // 16_384 + 1) + 64


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _noise(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return path.startswith(_NOISE_FOLDER) or base in _NOISE_FILES or base.startswith("._")


def _display_name(name: str) -> str:
    """A member's path as people read it: no control characters, not absurdly long."""
    return "".join(c for c in name if c.isprintable())[:255] or "?"


def members(data: bytes, name: str, limits: Limits) -> list[tuple[str, bytes]]:
    """(member's name, bytes) of every file in the archive, in the archive's order."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DocumentError(_("'%(name)s' is not a complete ZIP archive (truncated, or another kind of file "
                              "renamed .zip).", name=name)) from None
    with archive:
        parts = [info for info in archive.infolist() if not info.is_dir() and not _noise(info.filename)]
        _refuse_bomb(name, parts, limits)
        found = []
        for info in parts:
            member = _display_name(info.filename)
            if info.flag_bits & 0x1:
                raise DocumentError(_("'%(member)s' in '%(name)s' is encrypted: put it in the ZIP without a "
                                      "password.", member=member, name=name))
            if info.file_size > limits.max_bytes:
                raise DocumentError(_("'%(member)s' in '%(name)s' is %(size)s MB; the limit for one file is "
                                      "%(limit)s MB.", member=member, name=name, size=f"{info.file_size / 1e6:.1f}",
                                      limit=f"{limits.max_bytes / 1e6:.1f}"))
            if info.compress_type not in _METHODS:
                raise DocumentError(_("'%(member)s' in '%(name)s' is compressed with a method other than Deflate: "
                                      "make the ZIP again with the usual settings.", member=member, name=name))
            try:
                content = _read(archive, info)
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError, RuntimeError) as exc:
                raise DocumentError(_("'%(member)s' in '%(name)s' cannot be unpacked (%(error)s).", member=member,
                                      name=name, error=f"{exc.__class__.__name__}: {str(exc)[:200]}")) from None
            found.append((member, content))
    if not found:
        raise DocumentError(_("'%(name)s' holds no file.", name=name))
    return found


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated 1 MB at a time (zlib is asked for no more than that at once)."""
    out = bytearray()
    with archive.open(info) as handle:
        while chunk := handle.read(_CHUNK):
            out += chunk
    return bytes(out)


def _refuse_bomb(name: str, parts: list[Any], limits: Limits) -> None:
    problem = archive_problem(parts, max_parts=limits.max_members, max_inflated=limits.max_inflated,
                              max_ratio=limits.max_ratio, ratio_from=limits.ratio_from)
    if problem is None:
        return
    if problem.kind == "parts":
        raise DocumentError(_("'%(name)s' holds %(count)s files; at most %(limit)s are taken at once.",
                              name=name, count=problem.count, limit=limits.max_members))
    if problem.kind == "inflated":
        raise DocumentError(_("'%(name)s' inflates to %(size)s MB (limit %(limit)s MB): refused as a possible zip "
                              "bomb.", name=name, size=f"{problem.inflated / 1e6:.0f}",
                              limit=f"{limits.max_inflated / 1e6:.0f}"))
    if problem.kind == "lies":
        raise DocumentError(_("'%(member)s' in '%(name)s' declares %(size)s bytes but packs %(packed)s: it is damaged "
                              "or made to exhaust memory, so it is refused before unpacking. Make the ZIP again.",
                              member=_display_name(problem.part), name=name, size=f"{problem.size:,}",
                              packed=f"{problem.packed:,}"))
    raise DocumentError(_("'%(member)s' in '%(name)s' inflates from %(packed)s MB to %(size)s MB (%(ratio)s times; "
                          "documents compress less than %(limit)s times): refused as a possible zip bomb.",
                          member=_display_name(problem.part), name=name, packed=f"{problem.packed / 1e6:.2f}",
                          size=f"{problem.size / 1e6:.0f}", ratio=problem.ratio, limit=limits.max_ratio))
