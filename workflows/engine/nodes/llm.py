"""The large-model nodes: a large model on every item (`llm`), and the cascade that asks it only
when the small model is unsure, and a person when the large model is unsure too.

Both hand an item to a person, with the reason in its trace, when the endpoint's model does not write
the item's language: a small local model asked about an Italian ticket answers with English fragments,
which would look like an answer downstream."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from workflows.engine.budgets import DatabaseBudget
from workflows.engine.state import ItemState
from workflows.graph.plan import Step
from workflows.models import LLMEndpoint, Workflow, registry
from workflows.runtimes import llm_server
from workflows.runtimes.language import NAMES
from workflows.runtimes.llm import ChatClient, Endpoint

from . import loader
from .base import Handler, Outcome, RunContext, outcomes_of, pinned, register


def _endpoint(name: str) -> Endpoint:
    try:
        row = LLMEndpoint.objects.get(name=name, enabled=True)
    except LLMEndpoint.DoesNotExist:
        raise LookupError(f"no enabled large-model endpoint is registered as '{name}'") from None
    return Endpoint(base_url=row.base_url, model=row.model_name,
                    api_key=os.environ.get(row.api_key_env, "") if row.api_key_env else "",
                    price_in_per_1k=float(row.price_in_per_1k), price_out_per_1k=float(row.price_out_per_1k),
                    location=row.location, region=row.region)


REDACTION_MODEL = "rampart@production"


def redaction_extractor(context: RunContext, *, required: bool) -> Any:
    """The personal-data model that finds names and addresses before text leaves (patterns alone find
    emails, IBANs and phone numbers, never a name): the version the run pinned when its graph uses one,
    else the production version, so a line without an extract node redacts just the same. When the
    workflow requires redaction and there is none, the node does not start and nothing is sent."""
    pin = next((p for p in context.models.values() if p.get("runtime") == "rampart"), None)
    if pin is None:
        try:
            pin = registry.resolve(REDACTION_MODEL).pin()
        except LookupError as exc:
            if required:
                raise LookupError(f"the workflow requires redaction, but the personal-data model that finds names "
                                  f"and addresses is missing ({exc}); nothing is sent until `manage.py setup_models` "
                                  "registers it") from None
            return None
    return loader.load(pin["version_id"], purpose="extract", patterns=[], entities=["person", "address"])


def client_for(step: Step, context: RunContext, *, prompt: str, output_field: str,
               max_tokens: int | None = None) -> ChatClient:
    config = dict(step.config)
    workflow = Workflow.objects.filter(pk=context.workflow_id).first()
    endpoint = _endpoint(config["endpoint"])
    required = False
    if workflow is not None:
        # Checked at run start too; checked again here because the endpoint may have changed since.
        if endpoint.location == "external" and not workflow.allow_external_endpoints:
            raise PermissionError("the workflow's data-residency policy forbids the external endpoint "
                                  f"'{config['endpoint']}'")
        if workflow.require_redaction:
            config["redact"] = required = True
    # In the database, not in this process: every worker running the node shares the caps.
    budget = DatabaseBudget(context.run_id, step.node.id, config["endpoint"],
                            max_tokens=int(config.get("budget_tokens") or 0),
                            max_eur=float(config.get("budget_eur") or 0.0))
    redact = bool(config.get("redact", True))
    extractor = redaction_extractor(context, required=required) if redact else None
    return ChatClient(endpoint, prompt=prompt, output_field=output_field,
                      max_tokens=max_tokens or int(config.get("max_tokens") or 256),
                      temperature=float(config.get("temperature", 0.2)), timeout=float(config.get("timeout") or 30),
                      retries=0,  # the executor retries transient errors per the node's policy
                      budget=budget, redact_personal_data=redact, extractor=extractor,
                      languages=llm_server.languages_of(endpoint.model))


HELD = ("language_unsupported", "budget_exhausted")  # the model was not asked: a person answers instead


def language_reason(out: dict[str, Any], endpoint: Endpoint) -> str:
    """Why an item went to a person instead of the model, for its trace and the reviewer."""
    if out.get("error_code") == "budget_exhausted":
        return f"{(out.get('error') or '').removeprefix('not sent: ')}; sent to review"
    where = "local " if endpoint.location == LLMEndpoint.ON_PREMISE else ""
    code = out.get("language") or ""
    return f"the {where}model does not write {NAMES.get(code, code or 'its language')}; sent to review"


def held_for_person(out: dict[str, Any], data: dict[str, Any], endpoint: Endpoint, field: str,
                    model_ref: str) -> Outcome:
    """An item the model was not asked about, parked for a person: the reason stays in its trace and
    reaches the reviewer, who writes the output field instead."""
    reason = language_reason(out, endpoint)
    keep = ("label", "confidence", "subject", "suggested_label", "decided_by")
    skipped = {"reason": reason, "language": out.get("language", "")}
    if out.get("error_code") == "budget_exhausted":
        skipped = {"reason": reason, "budget_exhausted": True}
    return Outcome(fields={"llm_skipped": skipped},
                   model_ref=model_ref,
                   park={"queue": "default", "labels": [], "proposal": {k: data[k] for k in keep if k in data},
                         "instructions": f"{reason[0].upper()}{reason[1:]}: write the {field.replace('_', ' ')} "
                                         "yourself."})


def llm_outcome(out: dict[str, Any], field: str, model_ref: str) -> Outcome:
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
        self.client = client_for(step, context, prompt=step.config["prompt"], output_field=self.field)
        self.model_ref = f"{step.config['endpoint']}/{self.client.endpoint.model}"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        return ask(self.client, batch, step, self.context, self.field, self.model_ref)


def ask(client: ChatClient, batch: list[ItemState], step: Step, context: RunContext, field: str,
        model_ref: str) -> list[Outcome]:
    """The large model's answers as outcomes (the llm node's and an abstractive summary's): what the
    model was not asked about (its language, a spent budget) goes to a person instead."""
    keys = [context.idempotency_key(step.node.id, s.item_id) for s in batch]
    outputs = client.run([s.data for s in batch], keys)
    outcomes = outcomes_of(outputs, model_ref, lambda o: llm_outcome(o, field, model_ref))
    for i, out in enumerate(outputs):
        if out.get("error_code") in HELD:
            outcomes[i] = held_for_person(out, batch[i].data, client.endpoint, field, model_ref)
    return outcomes


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
        pin = pinned(context, config["model"])
        self.model_ref = pin["ref"]
        input_field = config.get("input_field") or "text"
        if pin.get("kind") == "embedder":
            self.small = loader.load(pin["version_id"], purpose="zero_shot", labels=config.get("labels") or {},
                                     input_field=input_field)
        else:
            self.small = loader.load(pin["version_id"], input_field=input_field)
        self.client = None
        if config.get("endpoint"):
            choices = "\n".join(f"- {label}: {desc}" for label, desc in (config.get("labels") or {}).items())
            prompt = ("Classify the document into exactly one of these labels:\n" + choices +
                      f"\n\nDocument:\n{{{input_field}}}\n\nAnswer as 'label: <label>; confidence: <0 to 1>'.")
            self.client = client_for(step, context, prompt=prompt, output_field="answer", max_tokens=24)
            self.large_ref = f"{config['endpoint']}/{self.client.endpoint.model}"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        started = time.perf_counter()
        small = self.small.run([s.data for s in batch])
        outcomes: list[Outcome | None] = [None] * len(batch)
        unsure = []
        for i, out in enumerate(small):
            if out.get("error"):
                outcomes[i] = Outcome(error=out["error"], error_code=out.get("error_code", "model_error"),
                                      model_ref=self.model_ref)
            elif out["confidence"] >= self.small_threshold:
                outcomes[i] = Outcome(fields={"label": out["label"], "confidence": out["confidence"],
                                              "decided_by": "small"},
                                      label=out["label"], confidence=out["confidence"], port="decided",
                                      model_ref=self.model_ref)
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
                    stats = {"tokens": usage.get("tokens_in", 0) + usage.get("tokens_out", 0),
                             "cost_eur": usage.get("cost_eur", 0.0), "llm_calls": 1}
                    label, confidence = parse_label_answer(answer["answer"], self.labels)
                    if label is not None and (confidence if confidence is not None else 0.0) >= self.large_threshold:
                        outcomes[i] = Outcome(fields={"label": label, "confidence": confidence, "decided_by": "large",
                                                      "small": {"label": small_out["label"],
                                                                "confidence": small_out["confidence"]},
                                                      "llm": answer.get("llm") or {}},
                                              label=label, confidence=confidence, port="decided",
                                              model_ref=self.large_ref, stats=stats)
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
        if answer is not None and answer.get("error_code") == "budget_exhausted":
            fields["llm_skipped"] = {"reason": language_reason(answer, self.client.endpoint),
                                     "budget_exhausted": True}
        elif answer is not None and answer.get("error_code") == "language_unsupported":
            fields["llm_skipped"] = {"reason": language_reason(answer, self.client.endpoint),
                                     "language": answer.get("language", "")}
        elif answer is not None:
            fields["large_answer"] = answer.get("answer") or answer.get("error")
            if answer.get("llm"):
                fields["llm"] = answer["llm"]  # what was sent where, and what it cost (ledger, KPIs)
        return Outcome(fields=fields, label=small_out["label"], confidence=small_out["confidence"], port="review",
                       model_ref=self.model_ref, stats=stats)


