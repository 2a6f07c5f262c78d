"""Node handlers: what each node type does to a micro-batch of items.

The interface (model runtimes register theirs the same way):

    from workflows.engine.handlers import Handler, Outcome, RunContext, register

    @register("classify")
    class ClassifyHandler(Handler):
        def prepare(self, step: Step, context: RunContext) -> None:
            meta = context.models[step.config["model"]]        # resolved at run start
            self.runtime = HeadClassifier(...)                 # once per shard
        def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
            return [Outcome(fields=..., label=..., confidence=...) for ...]   # one per item, in order

`process` never raises for one bad item: it returns `Outcome(error=..., transient=...)` for that
item. An exception from `process` counts as a transient error of every item in the batch (retried
per the node's `retries`, then error port or dead letter). Handlers never write to the database:
the executor writes decisions, stats, review tasks and dead letters in one transaction per batch.
"""

from __future__ import annotations

import importlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workflows.graph.plan import Plan, Step

from .state import ItemState


@dataclass
class Outcome:
    """What a node made of one item."""

    fields: dict[str, Any] = field(default_factory=dict)  # added to the item, stored as the decision output
    label: str | None = None
    confidence: float | None = None
    port: str = "out"  # the route taken (ignored for sinks and parked items)
    error: str = ""
    error_code: str = ""
    transient: bool = False  # worth retrying (timeouts, 5xx, a busy endpoint)
    latency_ms: float | None = None  # per item; default: the batch's wall time / batch size
    model_ref: str = ""  # the concrete model version used, e.g. "minilm:v3" or its sha256
    stats: dict[str, float] = field(default_factory=dict)  # summed into NodeStats.extra, e.g. {"tokens": 41}
    park: dict[str, Any] | None = None  # a review proposal: the item waits for a person


@dataclass
class RunContext:
    run_id: int
    workflow_id: int
    models: dict[str, dict[str, Any]]  # every model reference of the graph, resolved at run start
    shard_id: int = 0
    attempt: int = 1

    def idempotency_key(self, node_id: str, item_id: int) -> str:
        """The same for every delivery of one item to one node: external systems drop repeats."""
        return f"{self.run_id}:{node_id}:{item_id}"


class Handler:
    """Base handler: pass-through. Subclass, override, and decorate with @register(node_type)."""

    node_type: ClassVar[str] = ""

    def prepare(self, step: Step, context: RunContext) -> None:
        self.context = context

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        return [Outcome() for _ in batch]


HANDLERS: dict[str, type[Handler]] = {}
_loaded = False


def register(node_type: str) -> Callable[[type[Handler]], type[Handler]]:
    """Class decorator: the handler for `node_type`. A later registration replaces an earlier one,
    so a model runtime can replace the built-in patterns-only extract."""

    def decorate(cls: type[Handler]) -> type[Handler]:
        cls.node_type = node_type
        HANDLERS[node_type] = cls
        return cls

    return decorate


def load_handler_modules() -> None:
    """Import the modules listed in settings.ENGINE_HANDLER_MODULES (once per process)."""
    global _loaded
    if _loaded:
        return
    from django.conf import settings

    for name in getattr(settings, "ENGINE_HANDLER_MODULES", []):
        importlib.import_module(name)
    _loaded = True


def handler_for(node_type: str) -> type[Handler]:
    load_handler_modules()
    try:
        return HANDLERS[node_type]
    except KeyError:
        raise LookupError(f"no handler is registered for node type '{node_type}'") from None


def missing_handlers(plan: Plan) -> list[str]:
    """Messages for every step whose node type has no handler in this process."""
    load_handler_modules()
    return [
        f"Node '{s.node.id}' ({s.node_type.title}) cannot run yet: no handler is installed for '{s.node.type}'."
        for s in plan.steps if s.node.type not in HANDLERS
    ]


def read_field(data: dict[str, Any], name: str) -> Any:
    value: Any = data
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# --- sources -------------------------------------------------------------------------------------


@register("source.upload")
class SourceHandler(Handler):
    pass


register("source.rest")(type("RestSourceHandler", (SourceHandler,), {}))
register("source.schedule")(type("ScheduleSourceHandler", (SourceHandler,), {}))


# --- route ---------------------------------------------------------------------------------------


def choose_branch(branches: list[dict[str, Any]], label: Any, confidence: Any) -> str:
    """The first branch whose labels and confidence bounds all match; 'else' when none does."""
    for branch in branches:
        labels = branch.get("labels") or []
        if labels and label not in labels:
            continue
        low, high = branch.get("min_confidence"), branch.get("max_confidence")
        if low is not None or high is not None:
            if not isinstance(confidence, int | float) or isinstance(confidence, bool):
                continue
            if low is not None and confidence < low:
                continue
            if high is not None and confidence > high:
                continue
        return branch["name"]
    return "else"


@register("route")
class RouteHandler(Handler):
    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        branches = [b for b in step.config.get("branches") or [] if isinstance(b, dict) and b.get("name")]
        label_field = step.config.get("label_field") or "label"
        return [
            Outcome(port=choose_branch(branches, read_field(s.data, label_field), s.data.get("confidence")))
            for s in batch
        ]


# --- extract (patterns only; the NER model arrives with the model runtimes) -----------------------


@register("extract")
class PatternExtractHandler(Handler):
    """Emails, phones, IBAN (mod-97), Italian VAT, amounts, dates… via workflows.runtimes.patterns."""

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        from workflows.runtimes.patterns import find_patterns

        self.find = find_patterns
        self.kinds = tuple(step.config.get("patterns") or ())
        self.input_field = step.config.get("input_field") or "text"

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outcomes = []
        for s in batch:
            text = read_field(s.data, self.input_field)
            if not isinstance(text, str):
                outcomes.append(Outcome(error=f"the item has no text in '{self.input_field}'", error_code="missing_field"))
                continue
            found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in self.kinds}
            for span in self.find(text, self.kinds):
                found[span.kind].append(span.to_json())
            outcomes.append(Outcome(fields={"fields": found}, model_ref="patterns"))
        return outcomes


# --- human review --------------------------------------------------------------------------------


@register("review")
class ReviewHandler(Handler):
    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        keep = ("label", "confidence", "fields", "summary", "answer", "subject", "suggested_label", "decided_by",
                "large_answer")
        return [
            Outcome(park={"queue": step.config.get("queue") or "default",
                          "instructions": step.config.get("instructions") or "",
                          "labels": step.config.get("labels") or [],
                          "proposal": {k: s.data[k] for k in keep if k in s.data}})
            for s in batch
        ]


# --- sinks ---------------------------------------------------------------------------------------


def flat_row(data: dict[str, Any], columns: list[str] | None = None) -> dict[str, Any]:
    """An item as one flat row: nested values as JSON text, chosen columns only when given."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        if columns and key not in columns:
            continue
        row[key] = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else value
    if columns:
        row = {c: row.get(c, "") for c in columns}
    return row


@register("sink.table")
class TableSinkHandler(Handler):
    """The results table is the ledger itself: the sink's decision marks the item as delivered."""

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        return [Outcome(port="") for _ in batch]


@register("sink.export")
class ExportSinkHandler(Handler):
    """Records the exported row; the file is streamed from the ledger (exactly once, in seq order)."""

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        columns = step.config.get("columns") or None
        return [Outcome(port="", fields={"row": flat_row(s.data, columns)}) for s in batch]


@register("sink.webhook")
class WebhookSinkHandler(Handler):
    """POSTs each item as JSON with `Idempotency-Key: run:node:item`; 5xx and timeouts are transient."""

    timeout = 10.0

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        outcomes = []
        for s in batch:
            key = self.context.idempotency_key(step.node.id, s.item_id)
            body = json.dumps({"run": self.context.run_id, "item": s.item_id, "seq": s.seq, "data": s.data},
                              ensure_ascii=False, default=str).encode()
            request = urllib.request.Request(step.config["url"], data=body, method="POST", headers={
                "Content-Type": "application/json", "Idempotency-Key": key})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s) only: the validator checks the URL
                    status = response.status
                outcome = Outcome(port="", fields={"webhook": {"status": status, "key": key}})
            except urllib.error.HTTPError as exc:
                transient = exc.code >= 500 or exc.code == 429
                outcome = Outcome(error=f"webhook answered HTTP {exc.code}", error_code=f"http_{exc.code}", transient=transient)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                outcome = Outcome(error=f"webhook unreachable: {getattr(exc, 'reason', exc)}", error_code="unreachable", transient=True)
            outcome.latency_ms = (time.perf_counter() - started) * 1000
            outcomes.append(outcome)
        return outcomes
