"""Checks an uploaded model before it may enter the registry: ONNX only, standard operators only,
no data outside the upload, bounded size. Each refusal says why and what to do instead.

A model file is code-adjacent: pickle and joblib run code when loaded, custom operator domains load
native libraries, and external-data paths can point anywhere on the disk. None of that is accepted.
Nor is a graph that would hold a worker for ever or fill its memory the first time it runs: a Loop
with no bound or a huge constant one, a tensor built from a constant shape of billions of values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from workflows.graph.text import _

# The standard ONNX domains, plus ONNX Runtime's own contrib operators (used by fused and quantised
# exports such as optimum's). Anything else needs a native custom-op library: refused.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
# Runtime bounds of an imported graph, read from its constants before any worker runs it. A classifier
# or encoder needs neither: sequence models loop over their input's length, which is computed, not constant.
MAX_LOOP_TRIPS = 100_000
MAX_BUILT_VALUES = 1 << 28  # a gigabyte of float32
# Operators that build a tensor whose size is given by a constant input: (input index, how to count).
SIZE_FROM_INPUT = {"ConstantOfShape": 0, "Expand": 1, "Tile": 1}


class ModelRejected(ValueError):
    """Every reason the upload is refused. Reasons are English Texts (graph/text.py): the audit entry
    keeps them in English, the page and the API translate them (workflows/design/texts.translate)."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__(" ".join(reasons))


@dataclass
class ModelReport:
    sha256: str
    size: int
    ir_version: int
    opsets: dict[str, int]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    node_count: int
    producer: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def sniff(data: bytes) -> str | None:
    """Name a well-known non-ONNX format from its first bytes."""
    head = data[:16]
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return _("a Python pickle (it would run code when loaded)")
    if head.startswith(b"PK\x03\x04"):
        return _("a zip archive (a PyTorch .pt/.pth checkpoint or a joblib/pickle bundle)")
    if head.startswith(b"\x93NUMPY"):
        return _("a NumPy array file")
    if head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b"):
        return _("a compressed (zlib/gzip) file, as joblib writes")
    if head.startswith(b"GGUF"):
        return _("a GGUF file (register generative models as large-model endpoints instead)")
    if len(data) > 8 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data):
        return _("a safetensors file (export it to ONNX with optimum first)")
    if head.lstrip().startswith((b"{", b"[")):
        return _("a JSON file")
    return None


def _external_problem(tensor: Any, where: str) -> str | None:
    from onnx import TensorProto

    if tensor.data_location != TensorProto.EXTERNAL:
        return None
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    if (not location or location.startswith(("/", "\\")) or ".." in location.replace("\\", "/").split("/")
            or ":" in location):
        return _("%(where)s reads its data from '%(location)s', a path outside the model bundle. Save the model "
                 "with its tensors inside the file (onnx.save(..., save_as_external_data=False)).", where=where,
                 location=location)
    return _("%(where)s keeps its data in a separate file '%(location)s' that is not part of this upload. Save the "
             "model with its tensors inside the one file.", where=where, location=location)


def _tensor_problems(tensor: Any, where: str) -> list[str]:
    """External-data problems of a tensor, or of both parts of a sparse tensor."""
    from onnx import SparseTensorProto

    parts = [tensor.values, tensor.indices] if isinstance(tensor, SparseTensorProto) else [tensor]
    return [p for p in (_external_problem(t, where) for t in parts) if p]


def inspect(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ModelReport:
    """Validate an ONNX model held in memory; raise ModelRejected with every reason found."""
    if not data:
        raise ModelRejected([_("The file is empty.")])
    if len(data) > max_bytes:
        raise ModelRejected([_("The file is %(size)s MB; the limit is %(limit)s MB.", size=f"{len(data) / 1e6:.0f}",
                               limit=f"{max_bytes / 1e6:.0f}")])
    kind = sniff(data)
    if kind:
        raise ModelRejected([_("This is %(kind)s, not an ONNX model. Only ONNX models are accepted.", kind=kind)])

    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelRejected([_("The file is not a readable ONNX model (%(error)s). Export it again with optimum, "
                               "torch.onnx or skl2onnx.", error=exc.__class__.__name__)]) from None
    if not model.graph.node or model.ir_version <= 0:
        raise ModelRejected([_("The file parses but holds no ONNX graph; it is not an ONNX model.")])

    reasons: list[str] = []
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    # Model-local functions are ONNX too (torch.onnx's dynamo exporter writes them): a node may call
    # one in its own domain; the function's body is checked like the graph.
    local = {(f.domain, f.name) for f in model.functions}
    local_domains = {d for d, _ in local}
    for domain in sorted(set(opsets) - ALLOWED_DOMAINS - local_domains):
        reasons.append(_("It imports the non-standard operator domain '%(domain)s', which needs a native custom-op "
                         "library. Only standard ONNX and ONNX Runtime operators are accepted.", domain=domain))
    # Every place a graph, node or tensor can hide: subgraphs of If/Loop/Scan, function bodies and the
    # training information (initialisation and algorithm graphs) included. Iterative, never recursive.
    graphs: list[Any] = [model.graph]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    node_lists: list[Any] = [f.node for f in model.functions]
    seen_domains: set[str] = set()
    while graphs or node_lists:
        if graphs:
            graph = graphs.pop()
            for tensor in graph.initializer:
                reasons += _tensor_problems(tensor, _("Tensor '%(name)s'", name=tensor.name))
            for sparse in graph.sparse_initializer:
                reasons += _tensor_problems(sparse, _("Sparse tensor '%(name)s'", name=sparse.values.name))
            node_lists.append(graph.node)
            continue
        for node in node_lists.pop():
            if (node.domain not in ALLOWED_DOMAINS and (node.domain, node.op_type) not in local
                    and node.domain not in seen_domains):
                seen_domains.add(node.domain)
                if node.domain not in opsets or node.domain in local_domains:
                    reasons.append(_("Node '%(node)s' uses operator '%(operator)s' from the non-standard domain "
                                     "'%(domain)s'. Only standard operators are accepted.",
                                     node=node.name or node.op_type, operator=node.op_type, domain=node.domain))
            for attr in node.attribute:
                where = _("Attribute '%(name)s' of node '%(node)s'", name=attr.name, node=node.name or node.op_type)
                for tensor in ([attr.t] if attr.HasField("t") else []) + list(attr.tensors):
                    reasons += _tensor_problems(tensor, where)
                for sparse in (([attr.sparse_tensor] if attr.HasField("sparse_tensor") else [])
                               + list(attr.sparse_tensors)):
                    reasons += _tensor_problems(sparse, where)
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    if reasons:
        raise ModelRejected(sorted(set(reasons), key=reasons.index))
    reasons = _runtime_bombs(model)
    if reasons:
        raise ModelRejected(reasons)

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise ModelRejected([_("The ONNX checker refuses the model: %(error)s", error=first)]) from None

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            out.append({"name": v.name,
                        "elem_type": onnx.TensorProto.DataType.Name(t.elem_type) if t.elem_type else "?",
                        "shape": dims})
        return out

    return ModelReport(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), ir_version=model.ir_version, opsets=opsets,
        inputs=describe(model.graph.input), outputs=describe(model.graph.output), node_count=len(model.graph.node),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
    )


def _small_constants(graph: Any) -> dict[str, list[float]]:
    """The graph's small constants (initializers and Constant nodes), flattened: shapes and bounds are
    tiny, so anything over 64 values (weights) is skipped without being decoded."""
    from onnx import numpy_helper

    out: dict[str, list[float]] = {}
    tensors = list(graph.initializer)
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or not node.output:
            continue
        for attr in node.attribute:
            if attr.name == "value" and attr.HasField("t"):
                tensor = type(attr.t)()
                tensor.CopyFrom(attr.t)
                tensor.name = node.output[0]
                tensors.append(tensor)
            elif attr.name in ("value_int", "value_float"):
                out[node.output[0]] = [float(attr.i if attr.name == "value_int" else attr.f)]
            elif attr.name in ("value_ints", "value_floats"):
                out[node.output[0]] = [float(v) for v in (attr.ints if attr.name == "value_ints" else attr.floats)]
    for tensor in tensors:
        count = 1
        for dim in tensor.dims:
            count *= dim
        if count > 64 or tensor.data_location == 1:  # 1: EXTERNAL (refused earlier anyway)
            continue
        try:
            out[tensor.name] = [float(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
        except (ValueError, TypeError):
            continue
    return out


def _runtime_bombs(model: Any) -> list[str]:
    """Nodes whose constant inputs would make a worker loop for ever or build a gigantic tensor."""
    reasons: list[str] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        constants = _small_constants(graph)
        for node in graph.node:
            name = node.name or node.op_type
            graphs.extend(attr.g for attr in node.attribute if attr.HasField("g"))
            graphs.extend(g for attr in node.attribute for g in attr.graphs)
            if node.domain not in ("", "ai.onnx"):
                continue
            built: float | None = None
            if node.op_type == "Loop":
                bound = node.input[0] if node.input else ""
                if not bound:
                    reasons.append(_("Loop '%(node)s' has no iteration bound: only its condition stops it. Export it "
                                     "with a maximum trip count.", node=name))
                elif bound in constants and constants[bound] and constants[bound][0] > MAX_LOOP_TRIPS:
                    reasons.append(_("Loop '%(node)s' may run %(n)s times; the limit is %(limit)s.", node=name,
                                     n=f"{int(constants[bound][0])}", limit=f"{MAX_LOOP_TRIPS}"))
            elif node.op_type in SIZE_FROM_INPUT:
                index = SIZE_FROM_INPUT[node.op_type]
                shape = constants.get(node.input[index]) if len(node.input) > index else None
                if shape:
                    built = 1.0
                    for dim in shape:
                        built *= max(dim, 1.0)
            elif node.op_type == "Range" and all(i in constants and constants[i] for i in node.input[:3]):
                start, limit, delta = (constants[i][0] for i in node.input[:3])
                built = (limit - start) / delta if delta else float("inf")
            elif node.op_type in ("RandomNormal", "RandomUniform"):
                shape = [a.ints for a in node.attribute if a.name == "shape"]
                if shape:
                    built = 1.0
                    for dim in shape[0]:
                        built *= max(dim, 1)
            if built is not None and built > MAX_BUILT_VALUES:
                reasons.append(_("Node '%(node)s' (%(operator)s) would make %(n)s values from its constants; the "
                                 "limit is %(limit)s.", node=name, operator=node.op_type,
                                 n=f"{built:.0f}" if built != float("inf") else "∞", limit=f"{MAX_BUILT_VALUES}"))
    return reasons
