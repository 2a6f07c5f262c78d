"""Builders for the inbound webhook tests: a workflow whose source is an inbound webhook, a source with
its secret, and a signed POST as a sender makes it."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.builders import edge, node
from tests.engine.helpers import make_runnable_workflow
from workflows.inbound import webhook_sources
from workflows.inbound.webhooks import sign


def webhook_graph(fields: tuple[str, ...] = ("text", "lang")) -> dict[str, Any]:
    """inbound webhook → extract (patterns) → route by language → table."""
    return {
        "nodes": [
            node("src", "source.webhook", fields=list(fields)),
            node("ext", "extract", patterns=["email", "iban", "amount"], entities=[]),
            node("route", "route", label_field="lang", branches=[{"name": "italian", "labels": ["it"]}]),
            node("out", "sink.table"),
        ],
        "edges": [edge("src", "ext"), edge("ext", "route"), edge("route", "out", source_port="italian"),
                  edge("route", "out", source_port="else")],
    }


def make_webhook_workflow(user: Any, graph: dict[str, Any] | None = None, name: str = "Hooked"):
    return make_runnable_workflow(user, graph or webhook_graph(), name=name)


def make_source(workflow: Any, user: Any, **values: Any):
    """(source, secret) made through the write path the pages and the API use."""
    settings = {"name": "CRM", "mapping": {"text": "/ticket/body", "lang": "/ticket/lang"}, **values}
    return webhook_sources.create_source(workflow, settings, user=user)


def signed(body: bytes, secret: str, *, key: str | None = "delivery-1", timestamp: int | None = None,
           **extra: str) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"X-Factory-Timestamp": str(timestamp), "X-Factory-Signature": sign(secret, timestamp, body), **extra}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def deliver(client: Any, source: Any, payload: Any, secret: str, **kwargs: Any):
    """POST `payload` (JSON, or bytes as they are) to the source's address, signed with `secret`."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    slug = source if isinstance(source, str) else source.slug
    return client.post(f"/hooks/{slug}/", data=body, content_type="application/json",
                       headers=signed(body, secret, **kwargs))
