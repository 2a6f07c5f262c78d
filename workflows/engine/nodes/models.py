"""The small-model nodes: classify, embed, extract, summarise and OCR, on ONNX Runtime.

Each handler loads its runtime once per shard in `prepare` (ONNX sessions are cached per worker
process by sha256, see loader.py), then runs whole micro-batches.
"""

from __future__ import annotations

import time
from typing import Any

from workflows.design.references import learned_key
from workflows.engine.state import ItemState
from workflows.graph.plan import Step
from workflows.models.registry import parse_ref
from workflows.runtimes.base import read_text
from workflows.runtimes.patterns import find_patterns

from . import loader
from .base import Handler, Outcome, RunContext, outcomes_of, pinned, register
from .llm import ask, client_for


def run_patterns(batch: list[dict[str, Any]], kinds: list[str], field_name: str) -> list[dict[str, Any]]:
    """Extraction by patterns alone (no model): the strictly formatted and checksummed fields."""
    outputs = []
    for item in batch:
        text, error = read_text(item, field_name)
        if error:
            outputs.append(error)
            continue
        found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for span in find_patterns(text, kinds):
            found.setdefault(span.kind, []).append(span.to_json())
        outputs.append({"fields": found})
    return outputs


class _ModelHandler(Handler):
    purpose = ""

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.input_field = step.config.get("input_field") or ("file" if step.node.type == "ocr" else "text")
        self.pin = self.pin_for(step, context)
        self.model_ref = self.pin["ref"]
        options = self.options(step)  # may choose self.purpose (classify: zero-shot on an embedder)
        self.runtime = loader.load(self.pin["version_id"], purpose=self.purpose, input_field=self.input_field,
                                   **options)

    def pin_for(self, step: Step, context: RunContext) -> dict[str, Any]:
        return pinned(context, step.config["model"])

    def options(self, step: Step) -> dict[str, Any]:
        return {}


@register("classify")
class ClassifyHandler(_ModelHandler):
    """Classify; with `shadow` on, the model's shadow alias runs on the same batch. Its answer is kept in
    the decision's output under "shadow" (the evidence for promoting it) and never routes anything."""

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.shadow = None
        if step.config.get("shadow"):
            shadow_pin = context.models.get(f"{parse_ref(step.config['model'])[0]}@shadow")
            if shadow_pin and shadow_pin["version_id"] != self.pin["version_id"]:
                self.shadow_ref = shadow_pin["ref"]
                options = self.options(step)
                self.shadow = loader.load(shadow_pin["version_id"], purpose=self.purpose, input_field=self.input_field,
                                          **options)

    def pin_for(self, step: Step, context: RunContext) -> dict[str, Any]:
        configured = pinned(context, step.config["model"])
        zero_shot = step.config.get("method") == "zero_shot" or configured.get("kind") == "embedder"
        # A zero-shot step whose own classifier has a production version decides with it instead.
        learned = context.models.get(learned_key(step.node.id)) if zero_shot else None
        return learned or configured

    def options(self, step: Step) -> dict[str, Any]:
        if self.pin.get("kind") == "embedder":  # no trained classifier decides the step: zero-shot
            self.purpose = "zero_shot"
            return {"labels": step.config.get("labels") or {}}
        self.purpose = ""
        return {}

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        items = [s.data for s in batch]
        outputs = self.runtime.run(items)
        outcomes = outcomes_of(outputs, self.model_ref, lambda o: Outcome(
            fields={"label": o["label"], "confidence": o["confidence"], "scores": o.get("scores", {}),
                    **({"warnings": o["warnings"]} if o.get("warnings") else {})},
            label=o["label"], confidence=o["confidence"], model_ref=self.model_ref))
        if self.shadow is not None:
            started = time.perf_counter()
            shadow_outputs = self.shadow.run(items)
            shadow_ms = round((time.perf_counter() - started) * 1000 / max(1, len(items)), 3)
            for outcome, shadow in zip(outcomes, shadow_outputs, strict=True):
                if outcome.error:
                    continue
                outcome.fields["shadow"] = {"model_ref": self.shadow_ref, "label": shadow.get("label"),
                                            "confidence": shadow.get("confidence"), "error": shadow.get("error", ""),
                                            "latency_ms": shadow_ms}
                outcome.stats["shadow_agree"] = float(shadow.get("label") == outcome.label)
                outcome.stats["shadow_items"] = 1.0
        return outcomes


@register("embed")
class EmbedHandler(_ModelHandler):
    purpose = "embed"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outputs = self.runtime.run([s.data for s in batch])
        return outcomes_of(outputs, self.model_ref, lambda o: Outcome(
            fields={"embedding": [round(float(x), 6) for x in o["embedding"]]}, model_ref=self.model_ref))


@register("extract")
class ExtractHandler(_ModelHandler):
    """The NER model for people, addresses, accounts; patterns for the strictly formatted fields."""

    purpose = "extract"

    def prepare(self, step: Step, context: RunContext) -> None:
        if not step.config.get("entities"):  # patterns alone: no model to load
            Handler.prepare(self, step, context)
            self.model_ref = "patterns"
            kinds = list(step.config.get("patterns") or [])
            field_name = step.config.get("input_field") or "text"
            self.runtime = type("Patterns", (),
                                {"run": staticmethod(lambda batch: run_patterns(batch, kinds, field_name))})()
            return
        super().prepare(step, context)

    def options(self, step: Step) -> dict[str, Any]:
        return {"patterns": list(step.config.get("patterns") or []),
                "entities": list(step.config.get("entities") or [])}

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outputs = self.runtime.run([s.data for s in batch])
        return outcomes_of(outputs, self.model_ref, lambda o: Outcome(
            fields={"fields": o.get("fields", {}), **({"warnings": o["warnings"]} if o.get("warnings") else {})},
            model_ref=self.model_ref))


@register("summarise")
class SummariseHandler(Handler):
    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.input_field = step.config.get("input_field") or "text"
        self.abstractive = step.config.get("method") == "abstractive"
        sentences = int(step.config.get("sentences") or 2)
        if self.abstractive:
            prompt = f"Summarise the following text in at most {sentences} sentences.\n\n{{{self.input_field}}}"
            self.client = client_for(step, context, prompt=prompt, output_field="summary")
            self.model_ref = f"{step.config['endpoint']}/{self.client.endpoint.model}"
        else:
            pin = pinned(context, step.config["model"])
            self.model_ref = pin["ref"]
            self.runtime = loader.load(pin["version_id"], purpose="summarise", sentences=sentences,
                                       input_field=self.input_field)

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        if self.abstractive:
            return ask(self.client, batch, step, self.context, "summary", self.model_ref)
        outputs = self.runtime.run([s.data for s in batch])
        return outcomes_of(outputs, self.model_ref, lambda o: Outcome(
            fields={"summary": o["summary"], **({"summary_sentences": o["sentences"]} if "sentences" in o else {})},
            model_ref=self.model_ref))



@register("ocr")
class OcrHandler(_ModelHandler):
    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outputs = self.runtime.run([s.data for s in batch])
        return outcomes_of(outputs, self.model_ref, lambda o: Outcome(
            fields={"text": o["text"], "ocr": {"lines": o.get("lines", 0), "confidence": o.get("confidence")}},
            confidence=o.get("confidence"), model_ref=self.model_ref))
