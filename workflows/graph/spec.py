"""Workflow graphs as plain data: parsing JSON into frozen dataclasses.

Parsing only checks the *shape* (types, ids, sizes). What the graph means (ports, fields, config,
cycles) is the validator's job, so that the designer sees every problem at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .text import _

MAX_NODES = 500
MAX_EDGES = 2000
MAX_ID_LENGTH = 64


class GraphFormatError(ValueError):
    """The JSON is not a graph at all. Carries every shape problem found, each saying what to fix."""

    def __init__(self, problems: list[str]):  # Texts (graph/text.py): translated where they are shown
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] | None = None
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "config": self.config}
        if self.position is not None:
            data["position"] = {"x": self.position[0], "y": self.position[1]}
        if self.label:
            data["label"] = self.label
        return data


@dataclass(frozen=True)
class Edge:
    source: str
    source_port: str
    target: str
    target_port: str

    def to_json(self) -> dict[str, str]:
        return {
            "source": self.source,
            "source_port": self.source_port,
            "target": self.target,
            "target_port": self.target_port,
        }

    def describe(self) -> str:
        return f"{self.source}.{self.source_port} → {self.target}.{self.target_port}"


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()

    @property
    def by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [n.to_json() for n in self.nodes], "edges": [e.to_json() for e in self.edges]}

    def checksum(self) -> str:
        return checksum(self.to_json())

    @classmethod
    def from_json(cls, data: Any, *, max_nodes: int = MAX_NODES) -> Graph:
        return parse_graph(data, max_nodes=max_nodes)


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json_size(data: Any) -> int:
    return len(canonical_json(data))


def checksum(graph_json: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(graph_json)).hexdigest()


def _parse_position(raw: Any, where: str, problems: list[str]) -> tuple[float, float] | None:
    if raw is None:
        return None
    if isinstance(raw, dict) and {"x", "y"} <= raw.keys():
        x, y = raw["x"], raw["y"]
    elif isinstance(raw, list | tuple) and len(raw) == 2:
        x, y = raw
    else:
        problems.append(_("%(where)s: position must be {\"x\": number, \"y\": number}.", where=where))
        return None
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, int | float) or not isinstance(y, int | float):
        problems.append(_("%(where)s: position x and y must be numbers.", where=where))
        return None
    return (float(x), float(y))


def _str_field(raw: dict[str, Any], key: str, where: str, problems: list[str], default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        problems.append(_("%(where)s: '%(key)s' is required.", where=where, key=key))
        return ""
    if not isinstance(value, str):
        problems.append(_("%(where)s: '%(key)s' must be a string, not %(kind)s.", where=where, key=key,
                          kind=type(value).__name__))
        return ""
    return value


def _parse_nodes(raw_nodes: list, problems: list[str]) -> list[Node]:
    """Each node object read, every problem of it added to `problems`."""
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        where = f"nodes[{index}]"
        if not isinstance(raw, dict):
            problems.append(_("%(where)s must be an object with 'id', 'type' and 'config'.", where=where))
            continue
        node_id = _str_field(raw, "id", where, problems)
        node_type = _str_field(raw, "type", where, problems)
        label = _str_field(raw, "label", where, problems, default="")
        if node_id:
            where = _("node '%(node)s'", node=node_id)
            if len(node_id) > MAX_ID_LENGTH:
                problems.append(_("%(where)s: id is longer than %(limit)s characters.", where=where,
                                  limit=MAX_ID_LENGTH))
            if node_id in seen:
                problems.append(_("%(where)s: the id is used by more than one node; ids must be unique.",
                                  where=where))
            seen.add(node_id)
        elif "id" in raw and isinstance(raw["id"], str):
            problems.append(_("%(where)s: 'id' must not be empty.", where=where))
        config = raw.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            problems.append(_("%(where)s: 'config' must be an object.", where=where))
            config = {}
        position = _parse_position(raw.get("position"), where, problems)
        nodes.append(Node(id=node_id, type=node_type, config=config, position=position, label=label))
    return nodes


def _parse_edges(raw_edges: list, problems: list[str]) -> list[Edge]:
    """Each edge object read (ports default to out → in), every problem of it added to `problems`."""
    edges: list[Edge] = []
    for index, raw in enumerate(raw_edges):
        where = f"edges[{index}]"
        if not isinstance(raw, dict):
            problems.append(_("%(where)s must be an object with 'source', 'source_port', 'target', 'target_port'.",
                              where=where))
            continue
        edges.append(
            Edge(
                source=_str_field(raw, "source", where, problems),
                source_port=_str_field(raw, "source_port", where, problems, default="out"),
                target=_str_field(raw, "target", where, problems),
                target_port=_str_field(raw, "target_port", where, problems, default="in"),
            )
        )
    return edges


def parse_graph(data: Any, *, max_nodes: int = MAX_NODES) -> Graph:
    """Parse graph JSON (already decoded) into a Graph, or raise GraphFormatError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise GraphFormatError([_("A graph must be a JSON object with 'nodes' and 'edges', not %(kind)s.",
                                  kind=type(data).__name__)])
    unknown = set(data) - {"nodes", "edges"}
    if unknown:
        problems.append(_("Unknown top-level keys %(keys)s: a graph has only 'nodes' and 'edges'.",
                          keys=str(sorted(unknown))))
    raw_nodes = data.get("nodes", [])
    raw_edges = data.get("edges", [])
    if not isinstance(raw_nodes, list):
        problems.append(_("'nodes' must be a list."))
        raw_nodes = []
    if not isinstance(raw_edges, list):
        problems.append(_("'edges' must be a list."))
        raw_edges = []
    if len(raw_nodes) > max_nodes:
        raise GraphFormatError([_("The graph has %(count)s nodes; the limit is %(limit)s. Split it into smaller "
                                  "workflows.", count=len(raw_nodes), limit=max_nodes)])
    if len(raw_edges) > MAX_EDGES:
        raise GraphFormatError([_("The graph has %(count)s edges; the limit is %(limit)s.", count=len(raw_edges),
                                  limit=MAX_EDGES)])

    nodes = _parse_nodes(raw_nodes, problems)
    edges = _parse_edges(raw_edges, problems)
    if problems:
        raise GraphFormatError(problems)
    return Graph(nodes=tuple(nodes), edges=tuple(edges))
