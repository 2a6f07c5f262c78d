"""Builders for executor tests: a registered (fake) NER model, small graphs, running shards inline."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.builders import edge, make_workflow, node


def register_model(name: str = "rampart", kind: str = "extractor") -> None:
    """Register a model version so that references like 'rampart@production' resolve. The pattern
    extractor never loads it."""
    from workflows.models.registry import register_version, set_initial_alias

    sha = hashlib.sha256(name.encode()).hexdigest()
    version, _ = register_version(model_name=name, kind=kind, meta={"sha256": sha, "size": 1, "name": name},
                                  source="packaged", runtime="onnx")
    set_initial_alias(version, "production")


def pattern_graph(sink: str = "sink.table", **sink_config: Any) -> dict[str, Any]:
    """source → extract (patterns only) → route by language → table (both branches)."""
    return {
        "nodes": [
            node("src", "source.upload", fields=["text", "lang"]),
            node("ext", "extract", patterns=["email", "iban", "vat", "amount", "date", "phone"], entities=[]),
            node("route", "route", label_field="lang", branches=[{"name": "italian", "labels": ["it"]}]),
            node("out", sink, **sink_config),
        ],
        "edges": [edge("src", "ext"), edge("ext", "route"), edge("route", "out", source_port="italian"),
                  edge("route", "out", source_port="else")],
    }


def tickets(count: int) -> list[dict[str, Any]]:
    texts = [
        ("Please refund EUR 1.234,56 to IT60 X054 2811 1010 0000 0123 456 by 12/03/2025, "
         "write to mario.rossi@example.it", "it"),
        ("Charged twice, contact john.smith@example.com or +44 20 7946 0958 about invoice 4471", "en"),
        ("Our VAT number is IT 12345678903, the amount is 99.00 EUR", "en"),
        ("Nessun dato qui, solo un saluto", "it"),
    ]
    return [{"text": f"{texts[i % 4][0]} #{i}", "lang": texts[i % 4][1]} for i in range(count)]


def make_runnable_workflow(user: Any, graph: dict[str, Any] | None = None, name: str = "Patterns"):
    register_model()
    workflow = make_workflow(user, graph or pattern_graph(), name=name)
    assert workflow.latest.is_runnable, workflow.latest.problems
    return workflow


def drain(limit: int = 10_000) -> int:
    """Run every queued shard inline, as a worker would (tests without a worker process)."""
    from workflows.engine.executor import run_shard
    from workflows.models import Shard

    ran = 0
    while ran < limit:
        shard = Shard.objects.filter(status=Shard.QUEUED).order_by("id").first()
        if shard is None:
            return ran
        run_shard(shard.pk, shard.attempt)
        ran += 1
    raise AssertionError("shards keep coming")
