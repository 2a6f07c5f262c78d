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

from .text import _

# Titles, labels and help are marked with `_` (graph/text.py): English here, translated where the
# palette, the side panel and the API show them (workflows/design/texts.py).
GROUPS = {
    "sources": _("Sources"),
    "models": _("Models"),
    "routing": _("Routing"),
    "review": _("Human review"),
    "large_model": _("Large model"),
    "sinks": _("Sinks"),
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


MODEL = ConfigField("model", "model", _("Model"), required=True,
                    help=_("A registered model alias (name@production) or a pinned version (name:v3)."))
INPUT_FIELD = ConfigField("input_field", "string", _("Input field"), default="text",
                          help=_("The item field holding the text to read."))
RETRIES = ConfigField("retries", "int", _("Retries"), default=2, minimum=0, maximum=10,
                      help=_("Extra attempts for transient errors."))
# A percentage, as people say it ("2 % of the items"); the executor samples by a hash of the run, the
# item and the node (engine/state.py: spot_sampled), so a retried shard draws the same sample.
SPOT_CHECK = ConfigField("spot_check", "float", _("Spot checks (% of what it decides alone)"), default=2.0,
                         minimum=0, maximum=100,
                         help=_("A random sample of the items this model decides without a person goes to the "
                                "spot-check queue, so that its accuracy is measured on them too. 0 turns spot "
                                "checks off."))

CATALOG: dict[str, NodeType] = {}


def register(node_type: NodeType) -> NodeType:
    CATALOG[node_type.type] = node_type
    return node_type


SOURCE_FIELDS = ConfigField("fields", "fields", _("Item fields"), default=["text"],
                            help=_("Fields each incoming item carries, e.g. text, subject, channel."))

register(NodeType(
    "source.upload", "sources", _("Upload"),
    _("Start from a batch file (CSV, JSONL or XLSX), or from documents (PDF, scans and photos, a ZIP of "
      "them, e-invoices: each with text, file_name, pages and original), uploaded when a run starts."),
    inputs=(), is_source=True, config=(SOURCE_FIELDS,), adds=_source_fields,
))
register(NodeType(
    "source.rest", "sources", _("REST intake"),
    _("Documents posted to the workflow's intake endpoint join its live run as they arrive."),
    inputs=(), is_source=True, config=(SOURCE_FIELDS,), adds=_source_fields,
))
register(NodeType(
    "source.webhook", "sources", _("Inbound webhook"),
    _("Documents a third-party system pushes with its own JSON to a signed webhook URL (set up on the workflow's "
      "Inbound webhooks page) join its live run as they arrive."),
    inputs=(), is_source=True, config=(SOURCE_FIELDS,), adds=_source_fields,
))
register(NodeType(
    "source.mailbox", "sources", _("Mailbox"),
    _("Messages arriving in an IMAP mailbox (set up on the workflow's Mailbox page) join its live run: subject, "
      "sender, date and text, and one item per PDF, scan or e-invoice attached."),
    inputs=(), is_source=True,
    adds=lambda config: {"text", "subject", "sender", "date", "message_id", "attachments"},
))
register(NodeType(
    "source.schedule", "sources", _("Schedule"),
    _("Start a batch run on a cron schedule from a stored data set."),
    inputs=(), is_source=True,
    config=(
        SOURCE_FIELDS,
        ConfigField("cron", "cron", _("Cron expression"), required=True,
                    help=_("Five fields, e.g. '0 7 * * 1-5' for 7:00 on weekdays.")),
        ConfigField("dataset", "string", _("Data set"), required=True,
                    help=_("Name of an uploaded data set to run on.")),
    ),
    adds=_source_fields,
))
register(NodeType(
    "ocr", "models", _("OCR"),
    _("Read the text of a scanned page or image (PP-OCR on ONNX Runtime)."),
    config=(ConfigField("model", "model", _("Model"), default="ocr@production", model_kind="ocr"),
            ConfigField("input_field", "string", _("File field"), default="file")),
    needs=lambda c: {_name(c, "input_field", "file")}, adds=lambda c: {"text"},
    outputs=("out", "error"),
))
register(NodeType(
    "classify", "models", _("Classify"),
    _("Give each document a label and a confidence: zero-shot from label descriptions, or a trained head."),
    config=(
        ConfigField("model", "model", _("Model"), required=True, model_kind="classifier",
                    help=_("A classifier alias, or an embedder for zero-shot.")),
        ConfigField("method", "choice", _("Method"), default="head", choices=("head", "zero_shot", "tfidf")),
        ConfigField("labels", "mapping", _("Labels and descriptions"),
                    help=_("For zero-shot: label → a sentence describing it.")),
        ConfigField("shadow", "bool", _("Run the shadow version alongside"), default=False,
                    help=_("Also run the model's shadow alias on the same items; its answers are recorded, "
                         "never routed.")),
        SPOT_CHECK, INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=lambda c: {"label", "confidence", "scores"}, outputs=("out", "error"),
))
register(NodeType(
    "extract", "models", _("Extract"),
    _("Find people, addresses, IBANs, VAT numbers, emails, phones, amounts and dates in the text."),
    config=(
        ConfigField("model", "model", _("NER model"), default="rampart@production", model_kind="extractor"),
        ConfigField("patterns", "list", _("Patterns"), default=["email", "phone", "iban", "vat", "amount", "date"],
                    choices=PATTERN_KINDS),
        ConfigField("entities", "list", _("Entities"), default=["person"], choices=NER_KINDS),
        SPOT_CHECK, INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=_extract_adds, outputs=("out", "error"),
    uses_model=lambda c: bool(c.get("entities")),
))
register(NodeType(
    "summarise", "models", _("Summarise"),
    _("Shorten the text to its key sentences (extractive) or ask the large model (abstractive)."),
    config=(
        ConfigField("method", "choice", _("Method"), default="extractive", choices=("extractive", "abstractive")),
        ConfigField("model", "model", _("Embedding model"), default="minilm@production", model_kind="embedder"),
        ConfigField("sentences", "int", _("Sentences"), default=2, minimum=1, maximum=20),
        ConfigField("endpoint", "endpoint", _("Large-model endpoint"), help=_("For abstractive summaries.")),
        INPUT_FIELD, RETRIES,
    ),
    needs=_input_field, adds=lambda c: {"summary"}, outputs=("out", "error"),
    uses_model=lambda c: c.get("method", "extractive") == "extractive",
))
register(NodeType(
    "embed", "models", _("Embed"),
    _("Turn the text into a vector (MiniLM for English, e5 for Italian and other languages) for search, "
      "retrieval and similarity."),
    config=(ConfigField("model", "model", _("Model"), default="minilm@production", model_kind="embedder"), INPUT_FIELD),
    needs=_input_field, adds=lambda c: {"embedding"}, outputs=("out", "error"),
))
register(NodeType(
    "route", "routing", _("Route"),
    _("Send each item down a branch by its label and/or confidence; items matching no branch go to 'else'."),
    outputs=_route_outputs,
    config=(
        ConfigField("branches", "branches", _("Branches"), required=True,
                    help=_("Ordered list of {name, labels: [...], min_confidence, max_confidence}; "
                         "the first match wins.")),
        ConfigField("label_field", "string", _("Label field"), default="label"),
    ),
    needs=_route_needs,
))
register(NodeType(
    "cascade", "routing", _("Cascade"),
    _("Small model first; when it is unsure ask the large model; when that is unsure too, a human."),
    outputs=("decided", "review", "error"),
    config=(
        ConfigField("model", "model", _("Small model"), required=True, model_kind="classifier"),
        ConfigField("small_threshold", "float", _("Small-model confidence to accept"), default=0.8, minimum=0,
                    maximum=1),
        ConfigField("endpoint", "endpoint", _("Large-model endpoint"), help=_("Leave empty to go straight to review.")),
        ConfigField("large_threshold", "float", _("Large-model confidence to accept"), default=0.7, minimum=0,
                    maximum=1),
        ConfigField("labels", "mapping", _("Labels and descriptions"),
                    help=_("The label set the large model must choose from.")),
        INPUT_FIELD,
    ),
    needs=_input_field, adds=lambda c: {"label", "confidence", "decided_by"},
))
register(NodeType(
    "llm", "large_model", _("Large model"),
    _("Call an OpenAI-compatible chat endpoint with a prompt built from item fields, within a budget."),
    outputs=("out", "error"),
    config=(
        ConfigField("endpoint", "endpoint", _("Endpoint"), required=True,
                    help=_("A registered endpoint (on-premise or external).")),
        ConfigField("model", "string", _("Model name"), default="smollm2"),
        ConfigField("prompt", "text", _("Prompt template"), required=True,
                    help=_("Item fields in braces, e.g. 'Answer this ticket: {text}'.")),
        ConfigField("output_field", "string", _("Output field"), default="answer"),
        ConfigField("max_tokens", "int", _("Max tokens"), default=256, minimum=1, maximum=8192),
        ConfigField("temperature", "float", _("Temperature"), default=0.2, minimum=0, maximum=2),
        ConfigField("timeout", "float", _("Timeout (s)"), default=30, minimum=1, maximum=600),
        RETRIES,
        ConfigField("budget_tokens", "int", _("Budget per run (tokens)"), default=200000, minimum=0),
        ConfigField("budget_eur", "float", _("Budget per run (€)"), default=5.0, minimum=0),
        ConfigField("redact", "bool", _("Redact personal data before sending"), default=True),
    ),
    needs=lambda c: template_fields(c.get("prompt")), adds=lambda c: {_name(c, "output_field", "answer")},
))
register(NodeType(
    "review", "review", _("Human review"),
    _("Park the item until an operator accepts or corrects the proposal; corrections become labels."),
    config=(
        ConfigField("queue", "string", _("Queue"), default="default"),
        ConfigField("instructions", "text", _("Instructions for reviewers"), default=""),
        ConfigField("labels", "list", _("Allowed labels"), default=[]),
    ),
    # With allowed labels the reviewer picks one (every decision path asks for it):
    # a route may branch on the reviewer's decision.
    adds=lambda c: {"reviewed", "label"} if c.get("labels") else {"reviewed"},
))
register(NodeType(
    "sink.table", "sinks", _("Results table"),
    _("Keep results in the run's table for browsing, search and download."),
    outputs=(), is_sink=True,
))
register(NodeType(
    "sink.export", "sinks", _("File export"),
    _("Write results to a CSV or JSONL file attached to the run."),
    outputs=(), is_sink=True,
    config=(ConfigField("format", "choice", _("Format"), default="csv", choices=("csv", "jsonl")),
            ConfigField("columns", "list", _("Columns"), default=[], help=_("Empty means every field."))),
))
register(NodeType(
    "sink.webhook", "sinks", _("Webhook"),
    _("POST each result as JSON to a destination an administrator registered, with an idempotency key per item."),
    outputs=(), is_sink=True,
    config=(ConfigField("destination", "destination", _("Destination"), required=True,
                        help=_("A registered webhook destination (on-premise or external); URLs are not typed here.")),
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
