"""Files every machine reaches: what one machine imports, trains or receives is in the database's
content-addressed store, and another machine — here, the same process with an empty ARTIFACTS_DIR,
which is all a second machine has — runs it from a verified local copy."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.governance.test_importer import tiny_model
from workflows.models import BlobChunk, ModelVersion, StoredBlob, blobs

pytestmark = pytest.mark.django_db


def test_a_model_imported_on_one_machine_runs_on_another_with_an_empty_disk(personas, api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "web-host"
    data = tiny_model().SerializeToString()
    answer = api(personas["trainer"]).post("/api/models/import/",
                                           {"file": SimpleUploadedFile("m.onnx", data), "name": "adder",
                                            "kind": "embedder"}, format="multipart")
    assert answer.status_code == 201, answer.data
    settings.ARTIFACTS_DIR = tmp_path / "worker-host"  # nothing of the web host's disk
    meta = ModelVersion.objects.get().runtime_meta()
    local = meta["path"]
    assert str(local).startswith(str(tmp_path / "worker-host"))
    with open(local, "rb") as handle:
        assert handle.read() == data
    import onnxruntime

    session = onnxruntime.InferenceSession(str(local), providers=["CPUExecutionProvider"])
    assert session.get_inputs()


def test_a_corrupt_local_copy_is_fetched_again(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    data = b"model bytes " * 1000
    sha = blobs.put_bytes(data, permanent=True)
    local = blobs.ensure_local(sha, ".onnx")
    local.write_bytes(b"tampered" + data[8:])
    again = blobs.ensure_local(sha, ".onnx")
    assert hashlib.sha256(again.read_bytes()).hexdigest() == sha


def test_a_large_file_is_kept_in_chunks_and_read_back_whole(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    data = bytes(range(256)) * (9 * 1024 * 1024 // 256 + 7)  # just over 9 MB: three chunks of at most 4 MB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    sha = blobs.put_file(source, permanent=True)
    assert sha == hashlib.sha256(data).hexdigest()
    assert BlobChunk.objects.filter(blob_id=sha).count() == 3
    assert StoredBlob.objects.get(pk=sha).size == len(data)
    assert blobs.ensure_local(sha).read_bytes() == data


def test_a_missing_blob_says_so():
    with pytest.raises(blobs.BlobMissing):
        blobs.ensure_local("0" * 64)


def test_the_local_copies_stay_under_their_cap_oldest_first_and_come_back_when_needed(settings, tmp_path):
    """Every model a worker ran and every original a page served was copied to local disk and kept for
    ever. Past ARTIFACT_CACHE_MB the copies not used for a while go, oldest first; one used recently
    stays (a process may be about to open it) and a copy that went is fetched again when needed."""
    import os
    import time

    settings.ARTIFACTS_DIR = tmp_path
    settings.ARTIFACT_CACHE_MB = 1
    shas = [blobs.put_bytes(bytes([i]) * 400_000, permanent=True) for i in range(3)]
    first, second = blobs.ensure_local(shas[0]), blobs.ensure_local(shas[1])
    old = time.time() - 3600
    os.utime(first, (old, old))
    os.utime(second, (old + 60, old + 60))
    third = blobs.ensure_local(shas[2])  # over 1 MB: the oldest copy goes
    assert not first.exists() and second.exists() and third.exists()
    assert sum(p.stat().st_size for p in blobs.cache_root().rglob("*") if p.is_file()) <= 1_000_000
    assert blobs.ensure_local(shas[0]).read_bytes() == bytes([0]) * 400_000  # fetched again
    assert third.exists()  # used a moment ago: kept, though the cache is over its cap again
