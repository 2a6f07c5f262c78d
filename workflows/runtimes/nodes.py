"""Executor handlers for the model nodes: classify, embed, extract, summarise, large model, cascade, OCR.

Each handler loads its runtime once per shard in `prepare` (ONNX sessions are cached per worker
process by sha256), then runs whole micro-batches. Loaded by the worker through
settings.ENGINE_HANDLER_MODULES; never imported by the web process.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from workflows.engine.handlers import Handler, Outcome, RunContext, register
from workflows.engine.state import ItemState
from workflows.graph.plan import Step

from . import loader
from .base import read_text
from .llm import Budget, ChatClient, Endpoint
from .patterns import find_patterns


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


def _pin(context: RunContext, ref: str) -> dict[str, Any]:
    try:
        return context.models[ref]
    except KeyError:
        raise LookupError(f"model '{ref}' was not resolved when the run started") from None


def _outcomes(outputs: list[dict[str, Any]], model_ref: str, make: Any) -> list[Outcome]:
    """Per-item runtime outputs → Outcomes; a runtime's per-item error stays a per-item error."""
    result = []
    for out in outputs:
        if out.get("error"):
            result.append(Outcome(error=out["error"], error_code=out.get("error_code", "model_error"),
                                  transient=bool(out.get("transient")), model_ref=model_ref))
        else:
            result.append(make(out))
    return result


class _ModelHandler(Handler):
    purpose = ""

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.input_field = step.config.get("input_field") or ("file" if step.node.type == "ocr" else "text")
        self.pin = _pin(context, step.config["model"])
        self.model_ref = self.pin["ref"]
        options = self.options(step)  # may choose self.purpose (classify: zero-shot on an embedder)
        self.runtime = loader.load(self.pin["version_id"], purpose=self.purpose, input_field=self.input_field, **options)

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
            from workflows.models.registry import parse_ref

            shadow_pin = context.models.get(f"{parse_ref(step.config['model'])[0]}@shadow")
            if shadow_pin and shadow_pin["version_id"] != self.pin["version_id"]:
                self.shadow_ref = shadow_pin["ref"]
                options = self.options(step)
                self.shadow = loader.load(shadow_pin["version_id"], purpose=self.purpose, input_field=self.input_field, **options)

    def options(self, step: Step) -> dict[str, Any]:
        if step.config.get("method") == "zero_shot" or self.pin.get("kind") == "embedder":
            self.purpose = "zero_shot"
            return {"labels": step.config.get("labels") or {}}
        self.purpose = ""
        return {}

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        items = [s.data for s in batch]
        outputs = self.runtime.run(items)
        outcomes = _outcomes(outputs, self.model_ref, lambda o: Outcome(
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
        return _outcomes(outputs, self.model_ref, lambda o: Outcome(
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
            self.runtime = type("Patterns", (), {"run": staticmethod(lambda batch: run_patterns(batch, kinds, field_name))})()
            return
        super().prepare(step, context)

    def options(self, step: Step) -> dict[str, Any]:
        return {"patterns": list(step.config.get("patterns") or []), "entities": list(step.config.get("entities") or [])}

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outputs = self.runtime.run([s.data for s in batch])
        return _outcomes(outputs, self.model_ref, lambda o: Outcome(
            fields={"fields": o.get("fields", {}), **({"warnings": o["warnings"]} if o.get("warnings") else {})},
            model_ref=self.model_ref))


def _endpoint(name: str) -> Endpoint:
    from workflows.models import LLMEndpoint

    try:
        row = LLMEndpoint.objects.get(name=name, enabled=True)
    except LLMEndpoint.DoesNotExist:
        raise LookupError(f"no enabled large-model endpoint is registered as '{name}'") from None
    return Endpoint(base_url=row.base_url, model=row.model_name, api_key=os.environ.get(row.api_key_env, "") if row.api_key_env else "",
                    price_in_per_1k=float(row.price_in_per_1k), price_out_per_1k=float(row.price_out_per_1k),
                    location=row.location, region=row.region)


def _spent(context: RunContext, node_id: str) -> tuple[int, float]:
    """Tokens and euros this node already spent in this run (all shards, all workers)."""
    from workflows.models import NodeStats

    stats = NodeStats.objects.filter(run_id=context.run_id, node=node_id).values_list("extra", flat=True).first() or {}
    return int(stats.get("tokens", 0)), float(stats.get("cost_eur", 0.0))


def _client(step: Step, context: RunContext, *, prompt: str, output_field: str, max_tokens: int | None = None) -> ChatClient:
    from workflows.models import Workflow

    config = dict(step.config)
    workflow = Workflow.objects.filter(pk=context.workflow_id).first()
    endpoint = _endpoint(config["endpoint"])
    if workflow is not None:
        # Checked at run start too; checked again here because the endpoint may have changed since.
        if endpoint.location == "external" and not workflow.allow_external_endpoints:
            raise PermissionError(f"the workflow's data-residency policy forbids the external endpoint '{config['endpoint']}'")
        if workflow.require_redaction:
            config["redact"] = True
    budget = Budget(int(config.get("budget_tokens") or 0), float(config.get("budget_eur") or 0.0))
    budget.used_tokens, budget.used_eur = _spent(context, step.node.id)
    extractor = None
    if config.get("redact", True):
        rampart = next((p for p in context.models.values() if p.get("runtime") == "rampart"), None)
        if rampart is not None:
            extractor = loader.load(rampart["version_id"], purpose="extract", patterns=[], entities=["person", "address"])
    return ChatClient(endpoint, prompt=prompt, output_field=output_field,
                      max_tokens=max_tokens or int(config.get("max_tokens") or 256),
                      temperature=float(config.get("temperature", 0.2)), timeout=float(config.get("timeout") or 30),
                      retries=0,  # the executor retries transient errors per the node's policy
                      budget=budget, redact_personal_data=bool(config.get("redact", True)), extractor=extractor)


def _llm_outcome(out: dict[str, Any], field: str, model_ref: str) -> Outcome:
    usage = out.get("llm") or {}
    return Outcome(fields={field: out[field], "llm": usage}, model_ref=model_ref,
                   stats={"tokens": usage.get("tokens_in", 0) + usage.get("tokens_out", 0),
                          "tokens_in": usage.get("tokens_in", 0), "tokens_out": usage.get("tokens_out", 0),
                          "cost_eur": usage.get("cost_eur", 0.0), "llm_calls": 1})


@register("llm")
class LargeModelHandler(Handler):
    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.field = step.config.get("output_field") or "answer"
        self.client = _client(step, context, prompt=step.config["prompt"], output_field=self.field)
        self.model_ref = f"{step.config['endpoint']}/{self.client.endpoint.model}"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        keys = [self.context.idempotency_key(step.node.id, s.item_id) for s in batch]
        outputs = self.client.run([s.data for s in batch], keys)
        return _outcomes(outputs, self.model_ref, lambda o: _llm_outcome(o, self.field, self.model_ref))


@register("summarise")
class SummariseHandler(Handler):
    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.input_field = step.config.get("input_field") or "text"
        self.abstractive = step.config.get("method") == "abstractive"
        sentences = int(step.config.get("sentences") or 2)
        if self.abstractive:
            prompt = f"Summarise the following text in at most {sentences} sentences.\n\n{{{self.input_field}}}"
            self.client = _client(step, context, prompt=prompt, output_field="summary")
            self.model_ref = f"{step.config['endpoint']}/{self.client.endpoint.model}"
        else:
            pin = _pin(context, step.config["model"])
            self.model_ref = pin["ref"]
            self.runtime = loader.load(pin["version_id"], purpose="summarise", sentences=sentences, input_field=self.input_field)

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        if self.abstractive:
            keys = [self.context.idempotency_key(step.node.id, s.item_id) for s in batch]
            outputs = self.client.run([s.data for s in batch], keys)
            return _outcomes(outputs, self.model_ref, lambda o: _llm_outcome(o, "summary", self.model_ref))
        outputs = self.runtime.run([s.data for s in batch])
        return _outcomes(outputs, self.model_ref, lambda o: Outcome(
            fields={"summary": o["summary"], **({"summary_sentences": o["sentences"]} if "sentences" in o else {})},
            model_ref=self.model_ref))


ANSWER = re.compile(r"label\s*[:=]\s*\**\s*([\w\- ]+?)\s*\**\s*(?:[;,.\n]|$)", re.I)
CONFIDENCE = re.compile(r"confidence\s*[:=]\s*([01](?:\.\d+)?)", re.I)


def parse_label_answer(answer: str, labels: list[str]) -> tuple[str | None, float | None]:
    """Read 'label: billing; confidence: 0.8' (or just a label name) from a generative model's answer."""
    lowered = {label.lower(): label for label in labels}
    match = ANSWER.search(answer or "")
    if match:
        label = lowered.get(match.group(1).strip().lower())
        found = CONFIDENCE.search(answer)
        confidence = float(found.group(1)) if found else None
        if label:
            return label, confidence
    named = [label for key, label in lowered.items() if re.search(rf"\b{re.escape(key)}\b", (answer or "").lower())]
    return (named[0], None) if len(named) == 1 else (None, None)


@register("cascade")
class CascadeHandler(Handler):
    """Small model first; below its threshold ask the large model; below that, a person.

    The large model reports its own confidence (poorly calibrated by nature: the threshold is a
    policy knob, checked against reviewed labels on the KPI page, not a probability).
    """

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        config = step.config
        self.small_threshold = float(config.get("small_threshold", 0.8))
        self.large_threshold = float(config.get("large_threshold", 0.7))
        self.labels = list((config.get("labels") or {}).keys())
        pin = _pin(context, config["model"])
        self.model_ref = pin["ref"]
        input_field = config.get("input_field") or "text"
        if pin.get("kind") == "embedder":
            self.small = loader.load(pin["version_id"], purpose="zero_shot", labels=config.get("labels") or {}, input_field=input_field)
        else:
            self.small = loader.load(pin["version_id"], input_field=input_field)
        self.client = None
        if config.get("endpoint"):
            choices = "\n".join(f"- {label}: {desc}" for label, desc in (config.get("labels") or {}).items())
            prompt = ("Classify the document into exactly one of these labels:\n" + choices +
                      f"\n\nDocument:\n{{{input_field}}}\n\nAnswer as 'label: <label>; confidence: <0 to 1>'.")
            self.client = _client(step, context, prompt=prompt, output_field="answer", max_tokens=24)
            self.large_ref = f"{config['endpoint']}/{self.client.endpoint.model}"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        started = time.perf_counter()
        small = self.small.run([s.data for s in batch])
        outcomes: list[Outcome | None] = [None] * len(batch)
        unsure = []
        for i, out in enumerate(small):
            if out.get("error"):
                outcomes[i] = Outcome(error=out["error"], error_code=out.get("error_code", "model_error"), model_ref=self.model_ref)
            elif out["confidence"] >= self.small_threshold:
                outcomes[i] = Outcome(fields={"label": out["label"], "confidence": out["confidence"], "decided_by": "small"},
                                      label=out["label"], confidence=out["confidence"], port="decided", model_ref=self.model_ref)
            else:
                unsure.append(i)
        if unsure and self.client is not None:
            keys = [self.context.idempotency_key(step.node.id, batch[i].item_id) for i in unsure]
            answers = self.client.run([batch[i].data for i in unsure], keys)
            for i, answer in zip(unsure, answers, strict=True):
                small_out = small[i]
                stats = {}
                if not answer.get("error"):
                    usage = answer.get("llm") or {}
                    stats = {"tokens": usage.get("tokens_in", 0) + usage.get("tokens_out", 0), "cost_eur": usage.get("cost_eur", 0.0),
                             "llm_calls": 1}
                    label, confidence = parse_label_answer(answer["answer"], self.labels)
                    if label is not None and (confidence if confidence is not None else 0.0) >= self.large_threshold:
                        outcomes[i] = Outcome(fields={"label": label, "confidence": confidence, "decided_by": "large",
                                                      "small": {"label": small_out["label"], "confidence": small_out["confidence"]},
                                                      "llm": answer.get("llm") or {}},
                                              label=label, confidence=confidence, port="decided", model_ref=self.large_ref, stats=stats)
                        continue
                outcomes[i] = self._to_review(small_out, stats, answer)
        for i in unsure:
            if outcomes[i] is None:
                outcomes[i] = self._to_review(small[i], {}, None)
        elapsed = (time.perf_counter() - started) * 1000 / max(1, len(batch))
        for o in outcomes:
            if o is not None and o.latency_ms is None:
                o.latency_ms = elapsed
        return [o for o in outcomes if o is not None]

    def _to_review(self, small_out: dict[str, Any], stats: dict[str, Any], answer: dict[str, Any] | None) -> Outcome:
        fields = {"label": small_out["label"], "confidence": small_out["confidence"], "decided_by": "human"}
        if answer is not None:
            fields["large_answer"] = answer.get("answer") or answer.get("error")
            if answer.get("llm"):
                fields["llm"] = answer["llm"]  # what was sent where, and what it cost (ledger, KPIs)
        return Outcome(fields=fields, label=small_out["label"], confidence=small_out["confidence"], port="review",
                       model_ref=self.model_ref, stats=stats)


@register("ocr")
class OcrHandler(_ModelHandler):
    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outputs = self.runtime.run([s.data for s in batch])
        return _outcomes(outputs, self.model_ref, lambda o: Outcome(
            fields={"text": o["text"], "ocr": {"lines": o.get("lines", 0), "confidence": o.get("confidence")}},
            confidence=o.get("confidence"), model_ref=self.model_ref))
