"""A node a worker runs to say what it holds: the runtimes its loader keeps and the heavy modules
it imported (tests/engine/test_model_memory.py loads it with ENGINE_HANDLER_MODULES). It takes the
place of the route handler in that worker: a node type of its own would be unknown to the worker's
plan, which is made before the handler modules are imported."""

from __future__ import annotations

import sys

from django.db import connection

from workflows.engine.nodes import loader
from workflows.engine.nodes.base import Handler, Outcome, register
from workflows.runtimes import sessions

HEAVY = ("onnxruntime", "tokenizers", "torch", "transformers", "optimum", "llama_cpp", "rapidocr", "cv2", "sklearn")


@register("route")
class ProbeHandler(Handler):
    def process(self, batch, step):
        held = {"runtimes": [entry["version_id"] for entry in loader.cached()],
                "sessions": [key[0] if isinstance(key, tuple) else key for key in sessions.loaded()],
                "modules": [name for name in HEAVY if name in sys.modules],
                "idle_in_transaction": idle_in_transaction_timeout()}
        return [Outcome(fields={"probe": held}, port="else") for _ in batch]


def idle_in_transaction_timeout() -> str | None:
    """What PostgreSQL does with this worker's transactions left idle (None on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        return cursor.fetchone()[0]
