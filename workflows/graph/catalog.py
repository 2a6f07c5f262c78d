"""The node catalogue: every station a designer can drop on the canvas.

Each node type declares its ports, its config schema, the item fields it needs and the fields it
adds. That declaration is our typing: the validator checks, along every path, that what a node needs
is produced upstream. Pure Python: the canvas palette, the API and the executor all read from here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GROUPS = {
    "sources": "Sources",
    "models": "Models",
    "routing": "Routing",
    "review": "Human review",
    "large_model": "Large model",
    "sinks": "Sinks",
}

PATTERN_KINDS = ("email", "phone", "iban", "vat", "codice_fiscale", "amount", "date", "url")
NER_KINDS = ("person", "address", "organisation", "bank_account", "id_number")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")
MODEL_REF = re.compile(r"^[a-z0-9][a-z0-9_.-]*(@[a-z]+|:v[0-9]+)$")
CRON = re.compile(r"^(\S+\s+){4}\S+$")


@dataclass(frozen=True)
class ConfigField:
    name: str
    kind: str  # string, text, int, float, bool, choice, list, mapping, model, endpoint, destination, branches, cron,
    # url, fields
    label: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    model_kind: str = ""  # for kind == "model": embedder, classifier, extractor, generator, ocr

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "required": self.required,
            "default": self.default,
            "help": self.help,
        }
        if self.choices:
            data["choices"] = list(self.choices)
        if self.minimum is not None:
            data["minimum"] = self.minimum
        if self.maximum is not None:
            data["maximum"] = self.maximum
        if self.model_kind:
            data["model_kind"] = self.model_kind
        return data


Config = dict[str, Any]


@dataclass(frozen=True)
class NodeType:
    type: str
    group: str
    title: str
    description: str
    inputs: tuple[str, ...] = ("in",)
    outputs: tuple[str, ...] | Callable[[Config], tuple[str, ...]] = ("out",)
    config: tuple[ConfigField, ...] = ()
    needs: Callable[[Config], set[str]] = field(default=lambda config: set())
    adds: Callable[[Config], set[str]] = field(default=lambda config: set())
    is_source: bool = False
    is_sink: bool = False
    # Whether a config needs its model reference (extraction by patterns alone, for instance, does not).
    uses_model: Callable[[Config], bool] = field(default=lambda config: True)

    def output_ports(self, config: Config) -> tuple[str, ...]:
        return self.outputs(config) if callable(self.outputs) else self.outputs

    def with_defaults(self, config: Config) -> Config:
        merged = {f.name: f.default for f in self.config if f.default is not None}
        merged.update(config)
        return merged

    def to_json(self) -> dict[str, Any]:
        defaults = self.with_defaults({})
        return {
            "type": self.type,
            "group": self.group,
            "group_title": GROUPS[self.group],
            "title": self.title,
            "description": self.description,
            "inputs": list(self.inputs),
            "outputs": list(self.output_ports(defaults)),
            "dynamic_outputs": callable(self.outputs),
            "config": [f.to_json() for f in self.config],
            "needs": sorted(self.needs(defaults)),
            "adds": sorted(self.adds(defaults)),
        }


def _name(config: Config, key: str, default: str) -> str:
    """A setting that names a field; a wrong value (the validator reports it) counts as the default."""
    value = config.get(key)
    return value if isinstance(value, str) and value else default


def _names(config: Config, key: str) -> list[str]:
    value = config.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _branches(config: Config) -> list[dict[str, Any]]:
    value = config.get("branches")
    return [b for b in value if isinstance(b, dict)] if isinstance(value, list) else []


def _input_field(config: Config) -> set[str]:
    return {_name(config, "input_field", "text")}


def _source_fields(config: Config) -> set[str]:
    fields = config.get("fields") or ["text"]
    return {f for f in fields if isinstance(f, str)} if isinstance(fields, list) else {"text"}


def template_fields(template: Any) -> set[str]:
    """The item fields a prompt template refers to: '{subject}' and '{fields.iban}' style."""
    if not isinstance(template, str):
        return set()
    names: set[str] = set()
    try:
        for _, name, _, _ in string.Formatter().parse(template):
            if name:
                names.add(name.split("[")[0])
    except ValueError:
        return set()
    return names


def _route_outputs(config: Config) -> tuple[str, ...]:
    names = [b.get("name") for b in _branches(config)]
    return tuple(n for n in names if isinstance(n, str) and n) + ("else",)


def _route_needs(config: Config) -> set[str]:
    needs: set[str] = set()
    for branch in _branches(config):
        if branch.get("labels"):
            needs.add(_name(config, "label_field", "label"))
        if branch.get("min_confidence") is not None or branch.get("max_confidence") is not None:
            needs.add("confidence")
    return needs


def _extract_adds(config: Config) -> set[str]:
    return {"fields"} | {f"fields.{k}" for k in _names(config, "patterns") + _names(config, "entities")}


MODEL = ConfigField("model", "model", "Model", required=True,
                    help="A registered model alias (name@production) or a pinned version (name:v3).")
INPUT_FIELD = ConfigField("input_field", "string", "Input field", default="text",
                          help="The item field holding the text to read.")
RETRIES = ConfigField("retries", "int", "Retries", default=2, minimum=0, maximum=10,
                      help="Extra attempts for transient errors.")

CATALOG: dict[str, NodeType] = {}


def register(node_type: NodeType) -> NodeType:
    CATALOG[node_type.type] = node_type
    return node_type


SOURCE_FIELDS = ConfigField("fields", "fields", "Item fields", default=["text"],
                            help="Fields each incoming item carries, e.g. text, subject, channel.")

register(NodeType(
    "source.upload", "sources", "Upload",
    "Start from a batch file (CSV, JSONL or XLSX) uploaded when a run starts.",
    inputs=(), is_source=True, config=(SOURCE_FIELDS,), adds=_source_fields,
))
register(NodeType(
    "source.rest", "sources", "REST intake",
    "Documents posted to the workflow's intake endpoint join its live run as they arrive.",
    inputs=(), is_source=True, config=(SOURCE_FIELDS,), adds=_source_fields,
))
register(NodeType(
    "source.schedule", "sources", "Schedule",
    "Start a batch run on a cron schedule from a stored data set.",
    inputs=(), is_source=True,
    config=(
        SOURCE_FIELDS,
        ConfigField("cron", "cron", "Cron expression", required=True,
                    help="Five fields, e.g. '0 7 * * 1-5' for 7:00 on weekdays."),
        ConfigField("dataset", "string", "Data set", required=True, help="Name of an uploaded data set to run on."),
    ),
    adds=_source_fields,
))
register(NodeType(
    "ocr", "models", "OCR",
    "Read the text of a scanned page or image (PP-OCR on ONNX Runtime).",
    config=(ConfigField("model", "model", "Model", default="ocr@production", model_kind="ocr"),
            ConfigField("input_field", "string", "File field", default="file")),
    needs=lambda c: {_name(c, "input_field", "file")}, adds=lambda c: {"text"},
    outputs=("out", "error"),
))
register(NodeType(
    "classify", "models", "Classify",
    "Give each document a label and a confidence: zero-shot from label descriptions, or a trained head.",
    config=(
        ConfigField("model", "model", "Model", required=True, model_kind="classifier",
                    help="A classifier alias, or an embedder for zero-shot."),
        ConfigField("method", "choice", "Method", default="head", choices=("head", "zero_shot", "tfidf")),
        ConfigField("labels", "mapping", "Labels and descriptions",
                    help="For zero-shot: label → a sentence describing it."),
        ConfigField("shadow", "bool", "Run the shadow version alongside", default=False,
                    help="Also run the model's shadow alias on the same items; its answers are recorded, "
                         "never routed."),
        INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=lambda c: {"label", "confidence", "scores"}, outputs=("out", "error"),
))
register(NodeType(
    "extract", "models", "Extract",
    "Find people, addresses, IBANs, VAT numbers, emails, phones, amounts and dates in the text.",
    config=(
        ConfigField("model", "model", "NER model", default="rampart@production", model_kind="extractor"),
        ConfigField("patterns", "list", "Patterns", default=["email", "phone", "iban", "vat", "amount", "date"],
                    choices=PATTERN_KINDS),
        ConfigField("entities", "list", "Entities", default=["person"], choices=NER_KINDS),
        INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=_extract_adds, outputs=("out", "error"),
    uses_model=lambda c: bool(c.get("entities")),
))
register(NodeType(
    "summarise", "models", "Summarise",
    "Shorten the text to its key sentences (extractive) or ask the large model (abstractive).",
    config=(
        ConfigField("method", "choice", "Method", default="extractive", choices=("extractive", "abstractive")),
        ConfigField("model", "model", "Embedding model", default="minilm@production", model_kind="embedder"),
        ConfigField("sentences", "int", "Sentences", default=2, minimum=1, maximum=20),
        ConfigField("endpoint", "endpoint", "Large-model endpoint", help="For abstractive summaries."),
        INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=lambda c: {"summary"}, outputs=("out", "error"),
    uses_model=lambda c: c.get("method", "extractive") == "extractive",
))
register(NodeType(
    "embed", "models", "Embed",
    "Turn the text into a vector (MiniLM) for search, retrieval and similarity.",
    config=(ConfigField("model", "model", "Model", default="minilm@production", model_kind="embedder"), INPUT_FIELD),
    needs=_input_field, adds=lambda c: {"embedding"}, outputs=("out", "error"),
))
register(NodeType(
    "route", "routing", "Route",
    "Send each item down a branch by its label and/or confidence; items matching no branch go to 'else'.",
    outputs=_route_outputs,
    config=(
        ConfigField("branches", "branches", "Branches", required=True,
                    help="Ordered list of {name, labels: [...], min_confidence, max_confidence}; "
                         "the first match wins."),
        ConfigField("label_field", "string", "Label field", default="label"),
    ),
    needs=_route_needs,
))
register(NodeType(
    "cascade", "routing", "Cascade",
    "Small model first; when it is unsure ask the large model; when that is unsure too, a human.",
    outputs=("decided", "review", "error"),
    config=(
        ConfigField("model", "model", "Small model", required=True, model_kind="classifier"),
        ConfigField("small_threshold", "float", "Small-model confidence to accept", default=0.8, minimum=0, maximum=1),
        ConfigField("endpoint", "endpoint", "Large-model endpoint", help="Leave empty to go straight to review."),
        ConfigField("large_threshold", "float", "Large-model confidence to accept", default=0.7, minimum=0, maximum=1),
        ConfigField("labels", "mapping", "Labels and descriptions",
                    help="The label set the large model must choose from."),
        INPUT_FIELD,
    ),
    needs=_input_field, adds=lambda c: {"label", "confidence", "decided_by"},
))
register(NodeType(
    "llm", "large_model", "Large model",
    "Call an OpenAI-compatible chat endpoint with a prompt built from item fields, within a budget.",
    outputs=("out", "error"),
    config=(
        ConfigField("endpoint", "endpoint", "Endpoint", required=True,
                    help="A registered endpoint (on-premise or external)."),
        ConfigField("model", "string", "Model name", default="smollm2"),
        ConfigField("prompt", "text", "Prompt template", required=True,
                    help="Item fields in braces, e.g. 'Answer this ticket: {text}'."),
        ConfigField("output_field", "string", "Output field", default="answer"),
        ConfigField("max_tokens", "int", "Max tokens", default=256, minimum=1, maximum=8192),
        ConfigField("temperature", "float", "Temperature", default=0.2, minimum=0, maximum=2),
        ConfigField("timeout", "float", "Timeout (s)", default=30, minimum=1, maximum=600),
        RETRIES,
        ConfigField("budget_tokens", "int", "Budget per run (tokens)", default=200000, minimum=0),
        ConfigField("budget_eur", "float", "Budget per run (€)", default=5.0, minimum=0),
        ConfigField("redact", "bool", "Redact personal data before sending", default=True),
    ),
    needs=lambda c: template_fields(c.get("prompt")), adds=lambda c: {_name(c, "output_field", "answer")},
))
register(NodeType(
    "review", "review", "Human review",
    "Park the item until an operator accepts or corrects the proposal; corrections become labels.",
    config=(
        ConfigField("queue", "string", "Queue", default="default"),
        ConfigField("instructions", "text", "Instructions for reviewers", default=""),
        ConfigField("labels", "list", "Allowed labels", default=[]),
    ),
    adds=lambda c: {"reviewed"},
))
register(NodeType(
    "sink.table", "sinks", "Results table",
    "Keep results in the run's table for browsing, search and download.",
    outputs=(), is_sink=True,
))
register(NodeType(
    "sink.export", "sinks", "File export",
    "Write results to a CSV or JSONL file attached to the run.",
    outputs=(), is_sink=True,
    config=(ConfigField("format", "choice", "Format", default="csv", choices=("csv", "jsonl")),
            ConfigField("columns", "list", "Columns", default=[], help="Empty means every field.")),
))
register(NodeType(
    "sink.webhook", "sinks", "Webhook",
    "POST each result as JSON to a destination an administrator registered, with an idempotency key per item.",
    outputs=(), is_sink=True,
    config=(ConfigField("destination", "destination", "Destination", required=True,
                        help="A registered webhook destination (on-premise or external); URLs are not typed here."),
            RETRIES),
))


def providers_of(field_name: str) -> list[str]:
    """Node types that could add a field, for "add a … node upstream" hints."""
    found = []
    for node_type in CATALOG.values():
        if node_type.is_source:
            continue
        if field_name in node_type.adds(node_type.with_defaults({})):
            found.append(node_type.type)
        elif field_name.startswith("fields.") and node_type.type == "extract":
            found.append(node_type.type)
    if not found and field_name in {"text"}:
        found.append("ocr")
    return found


def catalog_json() -> list[dict[str, Any]]:
    return [node_type.to_json() for node_type in CATALOG.values()]
