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
    from workflows.design.versions import create_workflow

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


# --- a synthetic ledger (KPI tests): rows as the executor and the review queue write them ---------

def ledger_run(workflow, user=None, **fields: Any):
    """A finished run of the workflow's latest version, without executing anything."""
    from workflows.models import Run

    defaults = {"status": "succeeded", "source_node": "src", "shard_size": 256, "batch_size": 32}
    return Run.objects.create(workflow=workflow, version=workflow.latest, created_by=user, **{**defaults, **fields})


def ledger_item(run, seq: int, *, received, finished=None, status: str = "done", payload: dict | None = None):
    from workflows.models import Item

    return Item.objects.create(run=run, seq=seq, payload=payload or {"text": f"document {seq}"}, status=status,
                               received_at=received, finished_at=finished)


def ledger_decision(run, item, node: str, *, label: str | None = None, confidence: float | None = None,
                    output: dict | None = None, port: str = "out", model_ref: str = "", created_at=None,
                    error: str = ""):
    from django.utils import timezone

    from workflows.models import Decision

    return Decision.objects.create(run=run, item=item, node=node, label=label, confidence=confidence, port=port,
                                   output={**({"label": label} if label else {}),
                                           **({"confidence": confidence} if confidence is not None else {}),
                                           **(output or {})},
                                   model_ref=model_ref, error=error, created_at=created_at or timezone.now())


def ledger_review(run, item, *, node: str, review_node: str, truth: str, predicted: str,
                  confidence: float | None = None, user=None, decided_at=None):
    """A decided review task and the label it produced (as governance/review.py `decide` writes them)."""
    from django.utils import timezone

    from workflows.models import ReviewTask
    from workflows.models.registry import Label

    task = ReviewTask.objects.create(run=run, item=item, node=review_node, status=ReviewTask.DECIDED,
                                     proposal={"label": predicted, "confidence": confidence},
                                     result={"label": truth, "reviewed": True, "corrected": truth != predicted},
                                     decided_by=user, decided_at=decided_at or timezone.now())
    label = Label.objects.create(run=run, item=item, review_task=task, node=node, text=item.payload.get("text", ""),
                                 label=truth, predicted=predicted, confidence=confidence, source=Label.REVIEW,
                                 created_by=user)
    return task, label


def ledger_stats(run, node: str, *, items_in: int, cpu_seconds: float, extra: dict | None = None):
    from workflows.models import NodeStats

    return NodeStats.objects.create(run=run, node=node, items_in=items_in, cpu_seconds=cpu_seconds, extra=extra or {})


def ledger_document(run, seq: int, *, received, hours: float, path: str, small_conf: float | None,
                    small_label: str = "billing", large_label: str = "billing", truth: str | None = None,
                    answer_minutes: float | None = None, answer_eur: float = 0.0,
                    answer_tokens: tuple[int, int] = (0, 0), status: str = "done",
                    cascade: str = "cas", answer_node: str = "ans", review_node: str = "rev", user=None):
    """One document through a cascade (small → large → human) and optionally an answering large-model node.

    path: 'small' | 'large' | 'human' (who decided at the cascade) or 'dead' (the cascade failed).
    """
    from datetime import timedelta

    finished = received + timedelta(hours=hours)
    item = ledger_item(run, seq, received=received, finished=finished, status="dead" if path == "dead" else status)
    at = received + timedelta(minutes=1)
    if path == "dead":
        ledger_decision(run, item, cascade, port="dead", error="model failed", created_at=at)
        return item
    if path == "small":
        ledger_decision(run, item, cascade, label=small_label, confidence=small_conf, output={"decided_by": "small"},
                        port="decided", model_ref="tickets:v1", created_at=at)
    elif path == "large":
        ledger_decision(run, item, cascade, label=large_label, confidence=0.9, port="decided",
                        model_ref="local/smollm2",
                        output={"decided_by": "large", "small": {"label": small_label, "confidence": small_conf}},
                        created_at=at)
    else:
        ledger_decision(run, item, cascade, label=small_label, confidence=small_conf, port="review",
                        model_ref="tickets:v1", output={"decided_by": "human", "large_answer": "label: unsure"},
                        created_at=at)
        ledger_decision(run, item, review_node, port="parked", created_at=at)
    if truth is not None:
        said = large_label if path == "large" else small_label
        if path == "human":
            ledger_review(run, item, node=cascade, review_node=review_node, truth=truth, predicted=said,
                          confidence=small_conf, user=user, decided_at=finished)
        else:
            from workflows.models.registry import Label

            Label.objects.create(run=run, item=item, node=cascade, text="spot check", label=truth, predicted=said,
                                 source=Label.REVIEW, created_by=user)
    if answer_minutes is not None:
        ledger_decision(run, item, answer_node, created_at=received + timedelta(minutes=answer_minutes),
                        model_ref="local/smollm2",
                        output={"answer": "Dear customer, …", "llm": {"cost_eur": answer_eur,
                                                                      "tokens_in": answer_tokens[0],
                                                                      "tokens_out": answer_tokens[1]}})
    return item


def make_baseline(workflow, user=None, **values: Any):
    from decimal import Decimal

    from workflows.models import Baseline

    defaults = {"manual_minutes": 6, "hourly_cost": 30, "manual_accuracy": 95, "sla_hours": 24, "review_minutes": 2,
                "compute_eur_per_cpu_hour": "0.10", "large_model_eur_per_1k_tokens": None, "grid_g_co2_per_kwh": 300,
                "watts_per_core": 20}
    fields = {k: (None if v is None else Decimal(str(v))) for k, v in {**defaults, **values}.items()}
    return Baseline.objects.create(workflow=workflow, updated_by=user, **fields)
