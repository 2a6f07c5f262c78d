"""Build the packaged models (export, quantise, train the demo heads) and register them. Idempotent.

Runs at set-up (`make run`, CI), never in the web process: the build imports torch and optimum.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workflows.models import LLMEndpoint, ModelVersion
from workflows.models.registry import LabelledSet, register_version, set_initial_alias

E5_DESCRIPTION = ("multilingual-e5-small sentence embeddings (384 dimensions) for Italian, English and about "
                  "100 other languages; the runtime adds its query/passage prefixes.")
# build.py name → (registered model, runtime, description)
PACKAGED = {
    "minilm-fp32": ("minilm", "minilm", "all-MiniLM-L6-v2 sentence embeddings (384 dimensions)."),
    "minilm-int8": ("minilm", "minilm", "all-MiniLM-L6-v2 sentence embeddings (384 dimensions)."),
    "rampart": ("rampart", "rampart", "Personal-data NER: names, emails, phones, addresses, bank and ID numbers."),
    "bbc-head": ("news-topics", "head", "News topic classifier (business, entertainment, politics, sport, tech)."),
    "bbc-tfidf": ("news-topics", "tfidf", "News topic classifier (business, entertainment, politics, sport, tech)."),
    "ocr": ("ocr", "rapidocr", "Text from scanned pages and photos (PP-OCR detection, angle and recognition)."),
    "e5-fp32": ("e5-multilingual", "e5", E5_DESCRIPTION),
    "e5-int8": ("e5-multilingual", "e5", E5_DESCRIPTION),
}
INITIAL_ALIASES = {"minilm-int8": "production", "rampart": "production", "bbc-head": "production",
                   "bbc-tfidf": "candidate", "ocr": "production", "e5-int8": "production"}
LOCAL_LLM = "local-smollm2"


def register_metas(metas: dict[str, dict], log=print) -> dict[str, ModelVersion]:
    versions: dict[str, ModelVersion] = {}
    for key in PACKAGED:
        if key not in metas:
            continue
        meta = metas[key]
        model_name, runtime, description = PACKAGED[key]
        parent = ModelVersion.objects.filter(sha256=meta.get("parent")).first() if meta.get("parent") else None
        version, created = register_version(model_name=model_name, kind=meta["kind"], meta=meta, source=meta["source"],
                                            runtime=runtime, parent=parent, description=description)
        versions[key] = version
        log(f"  {'registered' if created else 'present   '} {version.ref:<18} {meta['source']:<10} "
            f"{version.size / 1e6:7.1f} MB  sha256 {version.sha256[:12]}")
    for key, alias in INITIAL_ALIASES.items():
        if key in versions and set_initial_alias(versions[key], alias):
            log(f"  alias      {versions[key].model.name}@{alias} → v{versions[key].number}")
    return versions


def package_ocr(out: Path) -> dict | None:
    """Copy the PP-OCR models shipped in the rapidocr wheel into the content-addressed store."""
    try:  # rapidocr ships the OCR models; without it there is nothing to register
        from workflows.runtimes.ocr import packaged_files
    except ImportError:
        return None
    from workflows.runtimes.build import _store  # build.py pulls in the set-up extras: only when models are built

    files = {role: _store(out, src, ".onnx") for role, src in packaged_files().items()}
    rec = files["rec"]
    return {"name": "ocr", "kind": "ocr", "source": "packaged", "path": rec["path"], "sha256": rec["sha256"],
            "size": sum(f["size"] for f in files.values()), "files": files, "licence": "Apache-2.0",
            "attribution": "PP-OCR models (PaddleOCR, Apache-2.0) as shipped in the rapidocr package", "params": {}}


def ensure_labelled_sets(versions: dict[str, ModelVersion]) -> None:
    """The BBC held-out split (the same one the heads were scored on) as the news-topics evidence set."""
    from workflows.runtimes.corpus import bbc_split  # the corpus package is a set-up extra

    if "bbc-head" not in versions or LabelledSet.objects.filter(name="bbc-test").exists():
        return
    _, _, test_texts, test_labels = bbc_split()
    LabelledSet.objects.create(
        name="bbc-test", model=versions["bbc-head"].model, source="packaged", labels=sorted(set(test_labels)),
        description="BBC News held-out split (bbc_split(test_size=0.2, seed=0)); research use, credited in the README.",
        items=[{"text": t, "label": label} for t, label in zip(test_texts, test_labels, strict=True)])


def ensure_local_llm_endpoint() -> LLMEndpoint:
    endpoint, _ = LLMEndpoint.objects.get_or_create(
        name=LOCAL_LLM,
        defaults={"base_url": os.environ.get("LLM_BASE_URL", "http://127.0.0.1:8088/v1"), "model_name": "smollm2",
                  "location": LLMEndpoint.ON_PREMISE, "region": "local (this machine)"},
    )
    return endpoint


class Command(BaseCommand):
    help = "Export, quantise and train the packaged models into ARTIFACTS_DIR and register them (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--artifacts-dir", default=None, help="Default: settings.ARTIFACTS_DIR")

    def handle(self, *args, artifacts_dir: str | None = None, **options):
        out = Path(artifacts_dir or settings.ARTIFACTS_DIR)
        out.mkdir(parents=True, exist_ok=True)
        try:  # the set-up extras (requirements-models.txt) may be missing: say so, do not crash
            from workflows.runtimes.build import build_all
        except ImportError as exc:
            raise CommandError(f"The model build needs requirements-models.txt installed ({exc}).") from exc
        self.stdout.write(f"Building packaged models into {out} (first run: a few minutes) …")
        metas = build_all(out, log=lambda line: self.stdout.write(f"  {line}"))
        ocr = package_ocr(out)
        if ocr:
            metas["ocr"] = ocr
        with transaction.atomic():
            versions = register_metas(metas, log=self.stdout.write)
            ensure_labelled_sets(versions)
            ensure_local_llm_endpoint()
        self.stdout.write(self.style.SUCCESS("Models ready."))
