"""What every node handler is: the interface between the executor and what a node does.

A handler turns a micro-batch of items into one Outcome per item. The flow nodes live in
`flow.py`, the small-model nodes in `models.py`, the large-model nodes in `llm.py`:

    from workflows.engine.nodes.base import Handler, Outcome, RunContext, register

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings
from django.utils.translation import gettext

from workflows.design.texts import translate
from workflows.engine.state import ItemState
from workflows.graph.plan import Plan, Step


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
    so a module named in ENGINE_HANDLER_MODULES can replace a built-in handler (the chaos tests slow
    the extractor down this way)."""

    def decorate(cls: type[Handler]) -> type[Handler]:
        cls.node_type = node_type
        HANDLERS[node_type] = cls
        return cls

    return decorate


# The flow nodes are always there; the model nodes come through the setting (default: both modules
# below), so a deployment can add its own handler modules or replace one.
BUILT_IN_MODULES = ("workflows.engine.nodes.flow", "workflows.engine.nodes.webhook")
# Paths that an installation may still name in its ENGINE_HANDLER_MODULES from before the move.
RENAMED_MODULES = {"workflows.runtimes." + "nodes": "workflows.engine.nodes.models"}


def load_handler_modules() -> None:
    """Import the built-in handler modules, then those in settings.ENGINE_HANDLER_MODULES (once per process)."""
    global _loaded
    if _loaded:
        return
    for name in (*BUILT_IN_MODULES, *getattr(settings, "ENGINE_HANDLER_MODULES", [])):
        importlib.import_module(RENAMED_MODULES.get(name, name))
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
        gettext("Node '%(node)s' (%(title)s) cannot run yet: no handler is installed for '%(type)s'.")
        % {"node": s.node.id, "title": translate(s.node_type.title), "type": s.node.type}
        for s in plan.steps if s.node.type not in HANDLERS
    ]


def pinned(context: RunContext, ref: str) -> dict[str, Any]:
    """The concrete model version a run pinned for `ref` when it started."""
    try:
        return context.models[ref]
    except KeyError:
        raise LookupError(f"model '{ref}' was not resolved when the run started") from None


def outcomes_of(outputs: list[dict[str, Any]], model_ref: str,
                make: Callable[[dict[str, Any]], Outcome]) -> list[Outcome]:
    """Per-item runtime outputs → Outcomes; a runtime's per-item error stays a per-item error."""
    result = []
    for out in outputs:
        if out.get("error"):
            result.append(Outcome(error=out["error"], error_code=out.get("error_code", "model_error"),
                                  transient=bool(out.get("transient")), model_ref=model_ref))
        else:
            result.append(make(out))
    return result
