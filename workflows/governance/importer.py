"""Checks an uploaded model before it may enter the registry: ONNX only, standard operators only,
no data outside the upload, bounded size. Each refusal says why and what to do instead.

A model file is code-adjacent: pickle and joblib run code when loaded, custom operator domains load
native libraries, and external-data paths can point anywhere on the disk. None of that is accepted.
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
