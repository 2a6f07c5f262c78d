"""The execution plan: a pure, ordered view of a valid graph that the executor walks."""

from __future__ import annotations

import graphlib
from collections import defaultdict
from dataclasses import dataclass, field

from .catalog import CATALOG, NodeType
from .spec import Graph, Node
from .validate import errors, validate


class PlanError(ValueError):
    def __init__(self, problems: list):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class Step:
    node: Node
    node_type: NodeType
    config: dict
    # output port -> downstream node ids, in edge order
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def order(self) -> list[str]:
        return [s.node.id for s in self.steps]

    def step(self, node_id: str) -> Step:
        for s in self.steps:
            if s.node.id == node_id:
                return s
        raise KeyError(node_id)

    @property
    def sources(self) -> list[Step]:
        return [s for s in self.steps if s.node_type.is_source]


def plan(graph: Graph, **resolvers) -> Plan:
    """Topological order (graphlib) with each step's port routing. Refuses a graph with errors."""
    problems = errors(validate(graph, **resolvers))
    if problems:
        raise PlanError(problems)
    return build_plan(graph)


def build_plan(graph: Graph) -> Plan:
    """The plan of a graph already known to validate without errors."""
    routes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    inputs: dict[str, list[str]] = defaultdict(list)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    # Add nodes in declaration order so that independent nodes keep a stable, readable order.
    for node in graph.nodes:
        sorter.add(node.id)
    for edge in graph.edges:
        sorter.add(edge.target, edge.source)
        routes[edge.source][edge.source_port].append(edge.target)
        inputs[edge.target].append(edge.source)
    by_id = graph.by_id
    steps = []
    for node_id in sorter.static_order():
        node = by_id[node_id]
        node_type = CATALOG[node.type]
        steps.append(Step(
            node=node,
            node_type=node_type,
            config=node_type.with_defaults(node.config),
            routes={port: tuple(targets) for port, targets in routes[node_id].items()},
            inputs=tuple(inputs[node_id]),
        ))
    return Plan(steps=tuple(steps))
