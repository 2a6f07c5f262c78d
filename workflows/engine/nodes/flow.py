"""The flow nodes: sources, route, human review and the table and export sinks (the webhook sink is
webhook.py). No model runs here, but for the OCR of a document's pages without a text layer, which
its source reads before any station sees it (documents.py)."""

from __future__ import annotations

from typing import Any

from workflows.engine.state import ItemState
from workflows.exports import flat_row
from workflows.graph.plan import Step

from .base import Handler, Outcome, register
from .documents import DocumentSource


def read_field(data: dict[str, Any], name: str) -> Any:
    """A field of the item, dotted for nested values (`fields.email`); None when absent."""
    value: Any = data
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# --- sources -------------------------------------------------------------------------------------


@register("source.upload")
class SourceHandler(DocumentSource):
    """Items pass as they came; a document with pages to OCR gets its text first."""


register("source.rest")(type("RestSourceHandler", (SourceHandler,), {}))
register("source.schedule")(type("ScheduleSourceHandler", (SourceHandler,), {}))
register("source.webhook")(type("WebhookSourceHandler", (SourceHandler,), {}))
register("source.mailbox")(type("MailboxSourceHandler", (SourceHandler,), {}))


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


# --- human review --------------------------------------------------------------------------------


@register("review")
class ReviewHandler(Handler):
    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        keep = ("label", "confidence", "fields", "summary", "answer", "subject", "suggested_label", "decided_by",
                "large_answer")
        # An item a person already decided upstream (the large-model node holds what its model cannot
        # write, e.g. Italian for an English-only model) goes on: asking the same person twice about
        # the same document is work, not control.
        return [
            Outcome() if s.data.get("reviewed") else
            Outcome(park={"queue": step.config.get("queue") or "default",
                          "instructions": step.config.get("instructions") or "",
                          "labels": step.config.get("labels") or [],
                          "proposal": {k: s.data[k] for k in keep if k in s.data}})
            for s in batch
        ]


# --- sinks ---------------------------------------------------------------------------------------


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
