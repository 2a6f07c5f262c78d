"""Checks an uploaded model before it may enter the registry: ONNX only, standard operators only,
no data outside the upload, bounded size. Each refusal says why and what to do instead.

A model file is code-adjacent: pickle and joblib run code when loaded, custom operator domains load
native libraries, and external-data paths can point anywhere on the disk. None of that is accepted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# The standard ONNX domains, plus ONNX Runtime's own contrib operators (used by fused and quantised
# exports such as optimum's). Anything else needs a native custom-op library: refused.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class ModelRejected(ValueError):
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
        return "a Python pickle (it would run code when loaded)"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a PyTorch .pt/.pth checkpoint or a joblib/pickle bundle)"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy array file"
    if head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b"):
        return "a compressed (zlib/gzip) file, as joblib writes"
    if head.startswith(b"GGUF"):
        return "a GGUF file (register generative models as large-model endpoints instead)"
    if len(data) > 8 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data):
        return "a safetensors file (export it to ONNX with optimum first)"
    if head.lstrip().startswith((b"{", b"[")):
        return "a JSON file"
    return None


def _external_problem(tensor: Any, where: str) -> str | None:
    from onnx import TensorProto

    if tensor.data_location != TensorProto.EXTERNAL:
        return None
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    if not location or location.startswith(("/", "\\")) or ".." in location.replace("\\", "/").split("/") or ":" in location:
        return (f"{where} reads its data from '{location}', a path outside the model bundle. "
                "Save the model with its tensors inside the file (onnx.save(..., save_as_external_data=False)).")
    return (f"{where} keeps its data in a separate file '{location}' that is not part of this upload. "
            "Save the model with its tensors inside the one file.")


def inspect(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ModelReport:
    """Validate an ONNX model held in memory; raise ModelRejected with every reason found."""
    if not data:
        raise ModelRejected(["The file is empty."])
    if len(data) > max_bytes:
        raise ModelRejected([f"The file is {len(data) / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB."])
    kind = sniff(data)
    if kind:
        raise ModelRejected([f"This is {kind}, not an ONNX model. Only ONNX models are accepted."])

    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelRejected([f"The file is not a readable ONNX model ({exc.__class__.__name__}). "
                             "Export it again with optimum, torch.onnx or skl2onnx."]) from None
    if not model.graph.node or model.ir_version <= 0:
        raise ModelRejected(["The file parses but holds no ONNX graph; it is not an ONNX model."])

    reasons: list[str] = []
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    for domain in sorted(set(opsets) - ALLOWED_DOMAINS):
        reasons.append(f"It imports the non-standard operator domain '{domain}', which needs a native custom-op "
                       "library. Only standard ONNX and ONNX Runtime operators are accepted.")
    graphs = [("graph", model.graph)]
    seen_domains: set[str] = set()
    while graphs:
        _, graph = graphs.pop()
        for tensor in list(graph.initializer) + [s.values for s in graph.sparse_initializer]:
            problem = _external_problem(tensor, f"Tensor '{tensor.name}'")
            if problem:
                reasons.append(problem)
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS and node.domain not in seen_domains:
                seen_domains.add(node.domain)
                if node.domain not in opsets:
                    reasons.append(f"Node '{node.name or node.op_type}' uses operator '{node.op_type}' from the "
                                   f"non-standard domain '{node.domain}'. Only standard operators are accepted.")
            for attr in node.attribute:
                if attr.HasField("t"):
                    problem = _external_problem(attr.t, f"Attribute '{attr.name}' of node '{node.name}'")
                    if problem:
                        reasons.append(problem)
                if attr.HasField("g"):
                    graphs.append((attr.name, attr.g))
                graphs.extend((attr.name, g) for g in attr.graphs)
    for function in model.functions:
        if function.domain not in ALLOWED_DOMAINS and function.domain not in opsets:
            reasons.append(f"It defines functions in the non-standard domain '{function.domain}'.")
    if reasons:
        raise ModelRejected(sorted(set(reasons), key=reasons.index))

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise ModelRejected([f"The ONNX checker refuses the model: {first}"]) from None

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "elem_type": onnx.TensorProto.DataType.Name(t.elem_type) if t.elem_type else "?",
                        "shape": dims})
        return out

    return ModelReport(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), ir_version=model.ir_version, opsets=opsets,
        inputs=describe(model.graph.input), outputs=describe(model.graph.output), node_count=len(model.graph.node),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
    )
