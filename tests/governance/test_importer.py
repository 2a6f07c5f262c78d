"""The malicious-model corpus: each refused with its own reason; a clean model accepted."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from workflows.governance.importer import ModelRejected, inspect  # noqa: E402


def tiny_model(domain: str = "", op: str = "Add", opset_domains: tuple[str, ...] = ("",)) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    node = helper.make_node(op, ["x", "bias"], ["y"], domain=domain, name="add")
    graph = helper.make_graph([node], "g", [x], [y], initializer=[bias])
    opsets = [helper.make_opsetid(d, 1 if d else 18) for d in opset_domains]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tests")
    model.ir_version = 9
    return model


def external(location: str) -> bytes:
    model = tiny_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return model.SerializeToString()


def reasons_for(data: bytes, **kwargs) -> str:
    with pytest.raises(ModelRejected) as exc:
        inspect(data, **kwargs)
    return " ".join(exc.value.reasons)


def test_a_clean_model_is_described():
    report = inspect(tiny_model().SerializeToString())
    assert report.node_count == 1 and report.inputs[0]["name"] == "x" and report.inputs[0]["elem_type"] == "FLOAT"
    assert len(report.sha256) == 64 and report.opsets == {"ai.onnx": 18}


def test_onnx_runtime_contrib_domain_is_allowed():
    inspect(tiny_model(domain="com.microsoft", op="FusedMatMul",
                       opset_domains=("", "com.microsoft")).SerializeToString())


def test_custom_operator_domain_is_refused():
    data = tiny_model(domain="evil.ops", op="Backdoor", opset_domains=("", "evil.ops")).SerializeToString()
    assert "non-standard operator domain 'evil.ops'" in reasons_for(data)


def test_custom_domain_on_a_node_without_opset_is_refused():
    data = tiny_model(domain="evil.ops", op="Backdoor").SerializeToString()
    assert "'Backdoor'" in reasons_for(data)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/shadow", "weights/../../secret.bin", "C:\\\\x.bin"])
def test_external_data_outside_the_bundle_is_refused(location):
    assert "outside the model bundle" in reasons_for(external(location))


def test_external_data_file_not_uploaded_is_refused():
    assert "not part of this upload" in reasons_for(external("weights.bin"))


def test_pickle_renamed_to_onnx_is_refused():
    data = pickle.dumps({"weights": [1, 2, 3]}, protocol=4)
    assert "pickle" in reasons_for(data)


def test_torch_checkpoint_zip_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps([1]))
    assert "zip archive" in reasons_for(buffer.getvalue())


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty"),
    (b"\x08\x07garbage-that-is-not-a-protobuf" * 3, "not"),
    (b"x" * 2000, "limit"),
])
def test_garbage_empty_and_oversized_files_are_refused(data, fragment):
    assert fragment in reasons_for(data, max_bytes=1000)


def test_truncated_model_is_refused():
    data = tiny_model().SerializeToString()
    assert "not" in reasons_for(data[: len(data) // 2])
