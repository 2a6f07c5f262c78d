"""Properties of the pure graph package (workflows/graph), for any graph JSON Hypothesis can make.

Parsing either gives a Graph or a GraphFormatError listing what to fix; validation never raises and
answers every problem as data; a graph without errors plans in an order that respects every edge and
routes every edge; diff(a, a) is empty and diff(a, b) applied to a gives b.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.graphs import (
    BASE_CONFIG,
    any_graph_json,
    json_values,
    mutate,
    near_valid_graphs,
    valid_graphs,
    wrong_values,
)
from workflows.graph import CATALOG, Graph, GraphFormatError, Problem, diff, errors, parse_graph, plan, validate

# Bounded for `make test` and derandomized so CI runs the same examples every time.
BOUNDED = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def parse_or_none(data: Any) -> Graph | None:
    try:
        return parse_graph(data)
    except GraphFormatError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return None


def resolves(ref: Any) -> bool:
    return ref == "tickets@production"


@BOUNDED
@given(any_graph_json())
def test_validate_never_raises_and_answers_problems_as_data(fuzz_figures, data):
    """Any JSON: parsed or refused with messages; if parsed, validated into Problems, never an exception."""
    fuzz_figures.graph_examples += 1
    graph = parse_or_none(data)
    if graph is None:
        return
    for resolvers in ({}, {"resolve_alias": resolves, "resolve_endpoint": resolves}):
        problems = validate(graph, **resolvers)
        assert all(isinstance(p, Problem) and p.message and p.severity in {"error", "warning"} for p in problems)
        assert all(p.node is None or p.node in graph.by_id for p in problems)
        for p in problems:
            p.to_json()  # serialisable as the API sends it


SETTINGS_OF = [(name, f.name) for name, node_type in sorted(CATALOG.items()) for f in node_type.config]


def graph_around(node_type: str) -> dict[str, Any]:
    """The node type in a small valid graph, an edge out of every output port it has by default."""
    source = node_type if node_type.startswith("source.") else "source.upload"
    nodes = [{"id": "src", "type": source, "config": copy.deepcopy(BASE_CONFIG[source])}]
    edges = []
    if not node_type.startswith("source."):
        nodes.append({"id": "n", "type": node_type, "config": copy.deepcopy(BASE_CONFIG[node_type])})
        edges.append({"source": "src", "source_port": "out", "target": "n", "target_port": "in"})
    last = nodes[-1]
    if not node_type.startswith("sink."):
        nodes.append({"id": "out", "type": "sink.table", "config": {}})
        spec = CATALOG[last["type"]]
        for port in spec.output_ports(spec.with_defaults(last["config"])):
            edges.append({"source": last["id"], "source_port": port, "target": "out", "target_port": "in"})
    return {"nodes": nodes, "edges": edges}


@pytest.mark.parametrize("node_type, setting", SETTINGS_OF)
@settings(BOUNDED, max_examples=15)
@given(value=wrong_values | json_values)
def test_any_value_in_any_setting_is_a_problem_not_a_crash(node_type, setting, value, fuzz_figures):
    """Every setting of every node type, set to any JSON value: a problem on the node, never an exception."""
    fuzz_figures.graph_examples += 1
    graph = graph_around(node_type)
    node = graph["nodes"][0 if node_type.startswith("source.") else 1]
    node["config"][setting] = value
    for resolvers in ({}, {"resolve_alias": resolves, "resolve_endpoint": resolves}):
        problems = validate(parse_graph(graph), **resolvers)
        assert all(isinstance(p, Problem) for p in problems)


def assert_plan_respects_edges(graph: Graph) -> None:
    steps = plan(graph)
    position = {node_id: i for i, node_id in enumerate(steps.order)}
    assert sorted(position) == sorted(graph.by_id), "every node is planned exactly once"
    for edge in graph.edges:
        assert position[edge.source] < position[edge.target], edge.describe()
        assert edge.target in steps.step(edge.source).routes[edge.source_port], edge.describe()
        assert edge.source in steps.step(edge.target).inputs, edge.describe()


@BOUNDED
@given(valid_graphs())
def test_a_constructed_valid_graph_validates_and_plans_along_every_edge(fuzz_figures, data):
    """The generator's valid graphs are valid to the validator, and their plan runs every edge source first."""
    fuzz_figures.graph_examples += 1
    graph = parse_graph(data)
    assert errors(validate(graph)) == []
    assert_plan_respects_edges(graph)


@BOUNDED
@given(near_valid_graphs())
def test_whatever_validates_plans_along_every_edge(fuzz_figures, data):
    """A mutated graph that still validates (a dropped edge, a retyped node…) plans along every edge too."""
    fuzz_figures.graph_examples += 1
    graph = parse_or_none(data)
    if graph is not None and not errors(validate(graph)):
        assert_plan_respects_edges(graph)


@BOUNDED
@given(any_graph_json())
def test_diff_of_a_graph_with_itself_is_empty(fuzz_figures, data):
    """No change, no diff: nothing added, removed, changed or moved."""
    fuzz_figures.graph_examples += 1
    graph = parse_or_none(data)
    if graph is None:
        return
    d = diff(graph, graph)
    assert d["identical"] is True
    assert not any(d["nodes"].values()) and not any(d["edges"].values())


def apply(old: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    """What a reader of the diff would do to the old graph to get the new one."""
    nodes = {n["id"]: copy.deepcopy(n) for n in old["nodes"]}
    for removed in d["nodes"]["removed"]:
        del nodes[removed["id"]]
    for added in d["nodes"]["added"]:
        nodes[added["id"]] = added
    for change in d["nodes"]["changed"]:
        node = nodes[change["id"]]
        for key in ("type", "label"):
            if key in change:
                assert node.get(key, "") == change[key]["old"]
                node[key] = change[key]["new"]
        for c in change.get("config", []):
            if c["change"] == "removed":
                del node["config"][c["key"]]
            else:
                node["config"][c["key"]] = c["new"]
    keys = ("source", "source_port", "target", "target_port")
    edges = {tuple(e[k] for k in keys) for e in old["edges"]}
    edges -= {tuple(e[k] for k in keys) for e in d["edges"]["removed"]}
    edges |= {tuple(e[k] for k in keys) for e in d["edges"]["added"]}
    return {"nodes": nodes, "edges": edges}


def behaviour(graph: Graph) -> dict[str, Any]:
    """A graph without its layout (positions are moves, not changes)."""
    keys = ("source", "source_port", "target", "target_port")
    return {"nodes": {n.id: {"id": n.id, "type": n.type, "config": n.config, **({"label": n.label} if n.label else {})}
                      for n in graph.nodes},
            "edges": {tuple(e.to_json()[k] for k in keys) for e in graph.edges}}


@BOUNDED
@given(valid_graphs(), st.data())
def test_diff_applied_to_the_old_graph_gives_the_new_one(fuzz_figures, data, more):
    """Applying the diff's additions, removals and config changes to the old graph rebuilds the new one."""
    fuzz_figures.graph_examples += 1
    old = parse_graph(data)
    edited = mutate(data, more.draw) if more.draw(st.booleans()) else copy.deepcopy(data)
    if isinstance(edited.get("nodes"), list):  # moves and reordering change no behaviour
        for node in edited["nodes"]:
            if isinstance(node, dict) and more.draw(st.booleans()):
                node["position"] = {"x": more.draw(st.integers(0, 999)), "y": more.draw(st.integers(0, 999))}
        edited["nodes"] = more.draw(st.permutations(edited["nodes"]))
    new = parse_or_none(edited)
    if new is None:
        return
    d = diff(old, new)
    rebuilt = apply({"nodes": [n.to_json() for n in old.nodes], "edges": [e.to_json() for e in old.edges]}, d)
    expected = behaviour(new)
    assert ({i: {k: v for k, v in n.items() if k != "position"} for i, n in rebuilt["nodes"].items()}
            == expected["nodes"])
    assert rebuilt["edges"] == expected["edges"]
    assert d["identical"] == (behaviour(old) == expected)
