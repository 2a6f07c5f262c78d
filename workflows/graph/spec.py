"""Workflow graphs as plain data: parsing JSON into frozen dataclasses.

Parsing only checks the *shape* (types, ids, sizes). What the graph means (ports, fields, config,
cycles) is the validator's job, so that the designer sees every problem at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MAX_NODES = 500
MAX_EDGES = 2000
MAX_ID_LENGTH = 64


class GraphFormatError(ValueError):
    """The JSON is not a graph at all. Carries every shape problem found, each saying what to fix."""

    def __init__(self, problems: list[str]):
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
        problems.append(f"{where}: position must be {{\"x\": number, \"y\": number}}.")
        return None
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, int | float) or not isinstance(y, int | float):
        problems.append(f"{where}: position x and y must be numbers.")
        return None
    return (float(x), float(y))


def _str_field(raw: dict[str, Any], key: str, where: str, problems: list[str], default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        problems.append(f"{where}: '{key}' is required.")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: '{key}' must be a string, not {type(value).__name__}.")
        return ""
    return value


def _parse_nodes(raw_nodes: list, problems: list[str]) -> list[Node]:
    """Each node object read, every problem of it added to `problems`."""
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        where = f"nodes[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} must be an object with 'id', 'type' and 'config'.")
            continue
        node_id = _str_field(raw, "id", where, problems)
        node_type = _str_field(raw, "type", where, problems)
        label = _str_field(raw, "label", where, problems, default="")
        if node_id:
            where = f"node '{node_id}'"
            if len(node_id) > MAX_ID_LENGTH:
                problems.append(f"{where}: id is longer than {MAX_ID_LENGTH} characters.")
            if node_id in seen:
                problems.append(f"{where}: the id is used by more than one node; ids must be unique.")
            seen.add(node_id)
        elif "id" in raw and isinstance(raw["id"], str):
            problems.append(f"{where}: 'id' must not be empty.")
        config = raw.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            problems.append(f"{where}: 'config' must be an object.")
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
            problems.append(f"{where} must be an object with 'source', 'source_port', 'target', 'target_port'.")
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
        raise GraphFormatError([f"A graph must be a JSON object with 'nodes' and 'edges', not {type(data).__name__}."])
    unknown = set(data) - {"nodes", "edges"}
    if unknown:
        problems.append(f"Unknown top-level keys {sorted(unknown)}: a graph has only 'nodes' and 'edges'.")
    raw_nodes = data.get("nodes", [])
    raw_edges = data.get("edges", [])
    if not isinstance(raw_nodes, list):
        problems.append("'nodes' must be a list.")
        raw_nodes = []
    if not isinstance(raw_edges, list):
        problems.append("'edges' must be a list.")
        raw_edges = []
    if len(raw_nodes) > max_nodes:
        raise GraphFormatError([f"The graph has {len(raw_nodes)} nodes; the limit is {max_nodes}. "
                                "Split it into smaller workflows."])
    if len(raw_edges) > MAX_EDGES:
        raise GraphFormatError([f"The graph has {len(raw_edges)} edges; the limit is {MAX_EDGES}."])

    nodes = _parse_nodes(raw_nodes, problems)
    edges = _parse_edges(raw_edges, problems)
    if problems:
        raise GraphFormatError(problems)
    return Graph(nodes=tuple(nodes), edges=tuple(edges))
