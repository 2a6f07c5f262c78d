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


# --- runtime bombs: graphs that pass the checker but would take a worker's memory or time -----------


def _graph_model(nodes: list, initializers: list, *, rank: int, output_type=TensorProto.FLOAT) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", output_type, [None] * rank)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="tests")
    model.ir_version = 9
    return model.SerializeToString()


def _counting_loop(trip_count: str) -> bytes:
    """y = a Loop that adds 1 to a counter trip_count times ('' = no bound: only its condition stops it)."""
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    cond_in = helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])
    acc_in = helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])
    cond_out = helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])
    acc_out = helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
                             "body", [i, cond_in, acc_in], [cond_out, acc_out],
                             initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    loop = helper.make_node("Loop", [trip_count, "keep_going", "zero"], ["y"], name="spin", body=body)
    inits = [helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    if trip_count:
        inits.append(helper.make_tensor(trip_count, TensorProto.INT64, [], [10**12]))
    return _graph_model([loop], inits, rank=0)


def test_a_loop_with_a_trillion_iterations_is_refused():
    assert "Loop 'spin' may run 1000000000000 times" in reasons_for(_counting_loop("trips"))


def test_a_loop_bounded_only_by_its_condition_is_refused():
    assert "Loop 'spin' has no iteration bound" in reasons_for(_counting_loop(""))


def test_a_constant_of_shape_bomb_is_refused():
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1 << 20, 1 << 20])
    data = _graph_model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")], [shape], rank=2)
    assert "'fill' (ConstantOfShape) would make 1099511627776 values" in reasons_for(data)


def test_an_expand_bomb_through_a_constant_node_is_refused():
    nodes = [helper.make_node("Constant", [], ["shape"], name="c",
                              value=helper.make_tensor("v", TensorProto.INT64, [3], [1 << 14, 1 << 14, 3])),
             helper.make_node("Expand", ["x", "shape"], ["y"], name="grow")]
    assert "'grow' (Expand) would make 805306368 values" in reasons_for(_graph_model(nodes, [], rank=3))


def test_a_range_bomb_is_refused():
    inits = [helper.make_tensor("start", TensorProto.INT64, [], [0]),
             helper.make_tensor("limit", TensorProto.INT64, [], [10**12]),
             helper.make_tensor("delta", TensorProto.INT64, [], [1])]
    data = _graph_model([helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="count")], inits,
                        rank=1, output_type=TensorProto.INT64)
    assert "'count' (Range) would make 1000000000000 values" in reasons_for(data)


def test_small_constant_shapes_and_bounded_loops_are_accepted():
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [4, 3])
    inspect(_graph_model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")], [shape], rank=2))
    bounded = onnx.load_from_string(_counting_loop("trips"))
    for tensor in bounded.graph.initializer:
        if tensor.name == "trips":
            tensor.CopyFrom(helper.make_tensor("trips", TensorProto.INT64, [], [8]))
    inspect(bounded.SerializeToString())
