"""Plain builder functions for tests (no factory_boy: `factory` is our project package)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from workflows.graph import parse_graph
from workflows.roles import ROLES

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, *roles: str, **extra: Any):
    User = get_user_model()
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.com", **extra)
    for role in roles:
        assert role in ROLES, role
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "config": config, "position": {"x": 0, "y": 0}}


def edge(source: str, target: str, source_port: str = "out", target_port: str = "in") -> dict[str, str]:
    return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}


def triage_graph() -> dict[str, Any]:
    """Upload → classify → route(confident/else) → extract → table; else → review → table."""
    return {
        "nodes": [
            node("src", "source.upload", fields=["text", "subject"]),
            node("cls", "classify", model="tickets@production"),
            node("route", "route", branches=[{"name": "confident", "min_confidence": 0.8}]),
            node("ext", "extract"),
            node("rev", "review"),
            node("out", "sink.table"),
        ],
        "edges": [
            edge("src", "cls"),
            edge("cls", "route"),
            edge("route", "ext", source_port="confident"),
            edge("route", "rev", source_port="else"),
            edge("ext", "out"),
            edge("rev", "out"),
        ],
    }


def chain_graph(length: int) -> dict[str, Any]:
    """A source, `length` extract steps in a row, a sink: for size and speed checks."""
    nodes = [node("src", "source.upload")]
    edges = []
    previous = "src"
    for i in range(length):
        nodes.append(node(f"n{i}", "extract", patterns=["email"], entities=[]))
        edges.append(edge(previous, f"n{i}"))
        previous = f"n{i}"
    nodes.append(node("out", "sink.table"))
    edges.append(edge(previous, "out"))
    return {"nodes": nodes, "edges": edges}


def make_workflow(user, graph: dict[str, Any] | None = None, name: str = "Triage"):
    from workflows.api.views import create_workflow

    workflow, _ = create_workflow(name=name, description="", graph=parse_graph(graph or triage_graph()),
                                  user=user, message="Created")
    return workflow


def register_model(name: str = "tickets", kind: str = "classifier", alias: str = "production", sha: str | None = None,
                   labels: list[str] | None = None, meta: dict[str, Any] | None = None):
    """A registry entry for graphs to resolve against (its artifact is not loaded by design tests)."""
    import hashlib

    from workflows.models.registry import register_version, set_initial_alias

    sha = sha or hashlib.sha256(f"{name}-{kind}".encode()).hexdigest()
    version, _ = register_version(model_name=name, kind=kind, source="packaged", runtime="head",
                                  meta={"sha256": sha, "size": 1, "labels": labels or [], **(meta or {})})
    if alias:
        set_initial_alias(version, alias)
    return version
