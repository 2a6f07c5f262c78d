"""Handlers the engine bench loads into its worker (ENGINE_HANDLER_MODULES=bench.engine_handlers):
a no-op station, and `classify` backed by the lead's real runtime (MiniLM int8 + BBC head) until the
model runtimes register their own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from workflows.engine.nodes.base import Handler, Outcome, register
from workflows.graph.catalog import CATALOG, NodeType
from workflows.graph.catalog import register as register_type

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")

if "bench.noop" not in CATALOG:
    register_type(NodeType("bench.noop", "routing", "No-op", "Passes items on unchanged (engine bench only)."))


@register("bench.noop")
class NoopHandler(Handler):
    def process(self, batch, step):
        return [Outcome() for _ in batch]


_runtime = None


def classifier():
    global _runtime
    if _runtime is None:
        from workflows.runtimes.classify import HeadClassifier

        manifests = ARTIFACTS / "manifests"
        head = json.loads((manifests / "bbc-head.json").read_text())
        embedder = json.loads((manifests / "minilm-int8.json").read_text())
        _runtime = HeadClassifier(head, embedder, batch_size=32)
    return _runtime


@register("classify")
class BenchClassify(Handler):
    def prepare(self, step, context):
        super().prepare(step, context)
        self.runtime = classifier()

    def process(self, batch, step):
        outs = self.runtime.run([s.data for s in batch])
        return [Outcome(error=o["error"], error_code=o.get("error_code", "")) if "error" in o else
                Outcome(label=o["label"], confidence=o["confidence"], model_ref="bbc-head+minilm-int8") for o in outs]
