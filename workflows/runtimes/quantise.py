"""Dynamic int8 recipes for BERT-style ONNX encoders (MiniLM, multilingual e5), and the one the build uses.

A recipe says how the fp32 graph is fused around quantisation and what ONNX Runtime's
`quantize_dynamic` is asked for. optimum's `AutoQuantizationConfig` presets are the same ORT
arguments under other names (dynamic mode, every quantisable operator by default):
`avx512` and `avx512_vnni` are int8 weights, symmetric, per channel unless told otherwise, i.e.
activations u8 × weights s8, the kernels VNNI (vpdpbusd) and AMX run; `avx2` is uint8 weights
(u8 × u8), which these CPUs run on slower paths. `reduce_range` (7-bit weights) exists for AVX-512
CPUs without VNNI, where vpmaddubsw can saturate.

bench/models.py builds every recipe here and compares them side by side on the machine it runs on
(throughput against fp32, BBC classification quality kept, cosine to fp32). Like the rest of the
runtimes package this imports no Django; onnx, onnxruntime's tools and optimum are imported inside
the functions, at build time only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FUSIONS = ("none", "optimum", "ort-bert")
WEIGHTS = ("int8", "uint8")


@dataclass(frozen=True)
class Recipe:
    """How an fp32 encoder becomes dynamic int8."""

    # Before quantising: "optimum" = ORTOptimizer level 2 (fused Attention, SkipLayerNorm, BiasGelu;
    # the embedding LayerNorm left alone); "ort-bert" = onnxruntime.transformers.optimizer with
    # model_type bert (the same fusions plus EmbedLayerNormalization); "none" = the plain export.
    fusion: str = "optimum"
    per_channel: bool = True
    reduce_range: bool = False
    weights: str = "int8"
    operators: tuple[str, ...] = ()  # () = every operator ORT quantises dynamically
    gelu_approximation: bool = False  # FastGelu (tanh) instead of the exact erf GELU
    fuse_after: bool = False  # run the ORT bert fusions over the int8 graph as well

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r}: choose one of {', '.join(FUSIONS)}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights {self.weights!r}: choose one of {', '.join(WEIGHTS)}")
        if self.gelu_approximation and self.fusion == "none":
            raise ValueError("gelu_approximation needs a fusion: the plain export has no Gelu node to replace")

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "operators": list(self.operators)}


# The build's recipe first. Measured side by side by bench/models.py; the README records the figures.
DEFAULT = "fused-per-channel"
RECIPES: dict[str, Recipe] = {
    DEFAULT: Recipe(),  # = optimum's avx512_vnni(is_static=False) after ORTOptimizer level 2
    "per-tensor": Recipe(per_channel=False),
    "reduce-range": Recipe(reduce_range=True),  # optimum's avx512 / avx2 with reduce_range=True
    "uint8-weights": Recipe(weights="uint8"),  # optimum's avx2(is_static=False)
    "matmul-only": Recipe(operators=("MatMul",)),
    "matmul-attention": Recipe(operators=("MatMul", "Attention")),
    "fast-gelu": Recipe(gelu_approximation=True),
    "ort-bert": Recipe(fusion="ort-bert"),
    "unfused": Recipe(fusion="none"),
    "quantise-then-fuse": Recipe(fusion="none", fuse_after=True),
}


def recipe_named(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"no int8 recipe {name!r}: choose one of {', '.join(RECIPES)}") from None


def quantise(model: Path, config: Path, target: Path, recipe: Recipe) -> Path:
    """Write `model` (fp32 ONNX, with its transformers config.json) as dynamic int8 to `target`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = model
        if recipe.fusion == "optimum":
            source = _fuse_optimum(model, config, work, gelu_approximation=recipe.gelu_approximation)
        elif recipe.fusion == "ort-bert":
            source = _fuse_ort_bert(model, config, work / "fused.onnx", gelu_approximation=recipe.gelu_approximation)
        quantised = work / "model_int8.onnx" if recipe.fuse_after else target
        # DefaultTensorType: fused contrib ops defeat ONNX shape inference, which the quantiser
        # uses to type MatMul outputs; they are all float here. WeightSymmetric as optimum's presets.
        quantize_dynamic(
            str(source),
            str(quantised),
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            weight_type=QuantType.QInt8 if recipe.weights == "int8" else QuantType.QUInt8,
            op_types_to_quantize=list(recipe.operators) or None,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "WeightSymmetric": True},
        )
        if recipe.fuse_after:
            _fuse_ort_bert(quantised, config, target, gelu_approximation=False)
    return target


def _fuse_optimum(model: Path, config: Path, work: Path, *, gelu_approximation: bool) -> Path:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    export = work / "export"
    export.mkdir()
    shutil.copyfile(model, export / "model.onnx")
    shutil.copyfile(config, export / "config.json")
    optimizer = ORTOptimizer.from_pretrained(str(export), file_names=["model.onnx"])
    # Level 2 = ORT's transformer fusions (Attention, SkipLayerNorm, BiasGelu); level 99 would
    # add layout changes specific to the machine that exported it.
    optimizer.optimize(
        save_dir=str(work / "fused"),
        optimization_config=OptimizationConfig(optimization_level=2, optimize_for_gpu=False,
                                               enable_gelu_approximation=gelu_approximation),
    )
    return work / "fused" / "model_optimized.onnx"


def _fuse_ort_bert(model: Path, config: Path, target: Path, *, gelu_approximation: bool) -> Path:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    shape = json.loads(config.read_text())
    options = FusionOptions("bert")
    options.enable_gelu_approximation = gelu_approximation
    # opt_level 0: the Python fusions only; the session applies ORT's own graph optimisations at load.
    fused = optimize_model(str(model), model_type="bert", num_heads=int(shape["num_attention_heads"]),
                           hidden_size=int(shape["hidden_size"]), optimization_options=options, opt_level=0)
    fused.save_model_to_file(str(target))
    return target
