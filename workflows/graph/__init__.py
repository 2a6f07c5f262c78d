"""Workflow graphs: spec, node catalogue, validation, plan and diff. Pure Python: no Django import."""

from __future__ import annotations

from .catalog import CATALOG, catalog_json
from .diff import diff
from .plan import Plan, PlanError, plan
from .spec import Edge, Graph, GraphFormatError, Node, canonical_json_size, checksum, parse_graph
from .validate import Problem, errors, validate

__all__ = [
    "CATALOG",
    "Edge",
    "Graph",
    "GraphFormatError",
    "Node",
    "Plan",
    "PlanError",
    "Problem",
    "canonical_json_size",
    "catalog_json",
    "checksum",
    "diff",
    "errors",
    "parse_graph",
    "plan",
    "validate",
]
