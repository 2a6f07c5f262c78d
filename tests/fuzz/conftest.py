from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest


class FuzzFigures:
    """What one fuzz run did, for bench/report.py: written to $CF_RELIABILITY_DIR/fuzz.json when set."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.operations: set[str] = set()
        self.identities: set[str] = set()
        self.requests = 0
        self.server_errors = 0
        self.schema_violations = 0
        self.role_violations = 0
        self.half_written = 0
        self.graph_examples = 0
        self.slowest: dict[str, float] = {}  # operation -> seconds spent fuzzing it

    def to_json(self) -> dict:
        return {
            "operations": len(self.operations),
            "roles": len(self.identities),
            "requests": self.requests,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "role_violations": self.role_violations,
            "half_written": self.half_written,
            "graph_examples": self.graph_examples,
            "seconds": round(time.monotonic() - self.started, 1),
            "slowest_operations": {op: round(t, 2) for op, t in sorted(self.slowest.items(), key=lambda x: -x[1])[:5]},
        }


@pytest.fixture(scope="session")
def fuzz_figures():
    figures = FuzzFigures()
    yield figures
    folder = os.environ.get("CF_RELIABILITY_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "fuzz.json").write_text(json.dumps(figures.to_json(), indent=2) + "\n")
