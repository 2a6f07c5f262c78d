"""OCR for documents that arrive scanned: PP-OCR (detection, angle, recognition) on ONNX Runtime.

The models ship inside the `rapidocr` wheel; set-up copies them into the content-addressed store and
the registry records their hashes, which are checked before the engine is built.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from pathlib import Path
from typing import Any

from .base import Item, Meta, Output, item_error
from .sessions import ArtifactError, file_sha256

MAX_IMAGE_BYTES = 20 * 1024 * 1024
ROLES = ("det", "cls", "rec")


def packaged_files() -> dict[str, Path]:
    import rapidocr

    models = Path(rapidocr.__file__).parent / "models"
    found = {"det": sorted(models.glob("*det*.onnx")), "cls": sorted(models.glob("*cls*.onnx")),
             "rec": sorted(models.glob("*rec*.onnx"))}
    missing = [role for role, paths in found.items() if not paths]
    if missing:
        raise ArtifactError(f"the rapidocr package has no {', '.join(missing)} model")
    return {role: paths[-1] for role, paths in found.items()}


def decode_image(value: Any) -> bytes:
    """An image from an item field: base64, a data: URL, or {"base64": …}."""
    if isinstance(value, dict):
        value = value.get("base64") or value.get("data")
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("the item has no image: give it as base64 or a data: URL")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the image is not valid base64") from None


class OcrRuntime:
    def __init__(self, meta: Meta | None = None, *, input_field: str = "file") -> None:
        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        if meta is not None:
            files = {}
            for role in ROLES:
                entry = meta["files"][role]
                if file_sha256(entry["path"]) != entry["sha256"]:
                    raise ArtifactError(f"OCR {role} model {entry['path']} does not match its recorded sha256")
                files[role] = entry["path"]
        else:
            files = {role: str(path) for role, path in packaged_files().items()}
        self.input_field = input_field
        self.model_ref = (meta or {}).get("ref", "rapidocr")
        self.engine = RapidOCR(params={"Det.model_path": files["det"], "Cls.model_path": files["cls"],
                                       "Rec.model_path": files["rec"]})

    def run(self, batch: list[Item]) -> list[Output]:
        from PIL import Image, UnidentifiedImageError

        outputs = []
        for item in batch:
            try:
                data = decode_image(item.get(self.input_field))
                if len(data) > MAX_IMAGE_BYTES:
                    outputs.append(item_error("too_large", f"the image is over {MAX_IMAGE_BYTES // 2**20} MB"))
                    continue
                image = Image.open(io.BytesIO(data)).convert("RGB")
            except ValueError as exc:
                outputs.append(item_error("no_image", str(exc)))
                continue
            except (UnidentifiedImageError, OSError):
                outputs.append(item_error("not_an_image",
                                          "the file is not an image this OCR can read (PNG, JPEG, TIFF…)"))
                continue
            outputs.append(self.read_image(image))
        return outputs

    def read_image(self, image: Any, *, upright: bool = False) -> Output:
        """The text of a PIL image. `upright`: the page is known to be the right way up (a rendered PDF
        page, a scanner's output), so the per-line angle classifier is skipped: on short lines it
        turns upright text over about as often as it rights a turned one ("uno due tre quattro"
        came out as "utet de bd durn")."""
        import numpy as np

        result = self.engine(np.asarray(image.convert("RGB"))[:, :, ::-1], use_cls=not upright)
        texts = list(result.txts or ())
        scores = [float(s) for s in (result.scores or ())]
        return {"text": "\n".join(texts), "lines": len(texts),
                "confidence": round(sum(scores) / len(scores), 4) if scores else 0.0}
