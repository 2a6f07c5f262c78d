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
