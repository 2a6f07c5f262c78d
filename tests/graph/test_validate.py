"""The validator reports every problem at once, each on its node, each saying what to fix."""

from __future__ import annotations

import pytest

from tests.builders import edge, node, triage_graph
from workflows.graph import GraphFormatError, parse_graph, plan, validate
from workflows.graph.plan import PlanError


def problems_of(graph: dict, **resolvers) -> list:
    return validate(parse_graph(graph), **resolvers)


def codes(graph: dict, **resolvers) -> set[str]:
    return {p.code for p in problems_of(graph, **resolvers) if p.severity == "error"}


def test_a_good_graph_has_no_problems():
    assert problems_of(triage_graph()) == []


def test_it_rejects_cycle_naming_its_nodes():
    graph = {
        "nodes": [node("s", "source.upload"), node("a", "extract"), node("b", "summarise"), node("t", "sink.table")],
        "edges": [edge("s", "a"), edge("a", "b"), edge("b", "a"), edge("b", "t")],
    }
    cycle = [p for p in problems_of(graph) if p.code == "cycle"]
    assert len(cycle) == 1
    assert set(cycle[0].nodes) == {"a", "b"}
    assert "cycle" in cycle[0].message


def test_it_rejects_self_loop():
    graph = {"nodes": [node("s", "source.upload"), node("a", "extract"), node("t", "sink.table")],
             "edges": [edge("s", "a"), edge("a", "a"), edge("a", "t")]}
    assert "cycle" in codes(graph)


def test_it_reports_dangling_edge():
    graph = triage_graph()
    graph["edges"].append(edge("ext", "ghost"))
    found = [p for p in problems_of(graph) if p.code == "dangling_edge"]
    assert found and "ghost" in found[0].message and found[0].edge == 6


def test_it_reports_unknown_ports_both_ends():
    graph = triage_graph()
    graph["edges"].append(edge("route", "out", source_port="maybe"))
    graph["edges"].append(edge("ext", "out", target_port="side"))
    messages = [p.message for p in problems_of(graph) if p.code == "unknown_port"]
    assert any("no output 'maybe'" in m and "confident, else" in m for m in messages)
    assert any("no input 'side'" in m for m in messages)


def test_it_reports_unknown_type():
    graph = triage_graph()
    graph["nodes"].append(node("x", "teleport"))
    graph["edges"].append(edge("src", "x"))
    found = [p for p in problems_of(graph) if p.code == "unknown_type"]
    assert found[0].node == "x" and "classify" in found[0].message


def test_it_names_a_node_type_that_could_add_a_missing_field():
    graph = {
        "nodes": [node("s", "source.upload"), node("r", "route", branches=[{"name": "billing", "labels": ["billing"]}]),
                  node("t", "sink.table")],
        "edges": [edge("s", "r"), edge("r", "t", source_port="billing"), edge("r", "t", source_port="else")],
    }
    missing = [p for p in problems_of(graph) if p.code == "missing_field"]
    assert [p.node for p in missing] == ["r"]
    assert "'label'" in missing[0].message and "Classify" in missing[0].message


def test_a_field_must_be_added_on_every_path():
    # 'label' arrives through classify on one path but not on the other: route still misses it.
    graph = {
        "nodes": [node("s", "source.upload"), node("c", "classify", model="m@production"), node("e", "extract"),
                  node("r", "route", branches=[{"name": "x", "labels": ["x"]}]), node("t", "sink.table")],
        "edges": [edge("s", "c"), edge("s", "e"), edge("c", "r"), edge("e", "r"), edge("r", "t", source_port="x"),
                  edge("r", "t", source_port="else")],
    }
    assert [p.node for p in problems_of(graph) if p.code == "missing_field"] == ["r"]


def test_a_route_may_branch_on_the_label_a_reviewer_chose():
    # A review step with allowed labels decides `label`: a route after it needs no classifier upstream.
    graph = {
        "nodes": [node("s", "source.upload"), node("v", "review", labels=["approve", "reject"]),
                  node("r", "route", branches=[{"name": "ok", "labels": ["approve"]}]), node("t", "sink.table")],
        "edges": [edge("s", "v"), edge("v", "r"), edge("r", "t", source_port="ok"), edge("r", "t", source_port="else")],
    }
    assert [p for p in problems_of(graph) if p.code == "missing_field"] == []
    # Without allowed labels the reviewer keeps the upstream label: nothing new is promised.
    graph["nodes"][1] = node("v", "review")
    assert [p.node for p in problems_of(graph) if p.code == "missing_field"] == ["r"]


def test_prompt_template_fields_are_needed():
    graph = {
        "nodes": [node("s", "source.rest", fields=["text"]),
                  node("l", "llm", endpoint="local", prompt="Reply to {customer}: {text}"),
                  node("t", "sink.table")],
        "edges": [edge("s", "l"), edge("l", "t")],
    }
    missing = [p for p in problems_of(graph) if p.code == "missing_field"]
    assert [p.field for p in missing] == ["customer"]


def test_it_reports_missing_and_invalid_config():
    graph = {
        "nodes": [node("s", "source.upload"), node("c", "classify"), node("m", "summarise", sentences=0),
                  node("r", "route", branches=[]), node("w", "sink.webhook", url="http://169.254.169.254/")],
        "edges": [edge("s", "c"), edge("c", "m"), edge("m", "r"), edge("r", "w", source_port="else")],
    }
    found = {(p.code, p.node, p.field) for p in problems_of(graph)}
    assert ("missing_config", "c", "model") in found
    assert ("invalid_config", "m", "sentences") in found
    assert ("missing_config", "r", "branches") in found
    # A webhook takes a registered destination, never a URL typed on the canvas.
    assert ("missing_config", "w", "destination") in found and ("unknown_config", "w", "url") in found


def test_it_reports_unresolved_model_alias_when_a_resolver_is_given():
    found = problems_of(triage_graph(), resolve_alias=lambda ref: ref != "tickets@production")
    assert [(p.code, p.node) for p in found] == [("unresolved_model", "cls")]


def test_it_reports_unreachable_and_unconnected_nodes():
    graph = triage_graph()
    graph["nodes"] += [node("lonely", "summarise"), node("island_a", "extract"), node("island_b", "summarise")]
    graph["edges"] += [edge("island_a", "island_b")]
    found = {(p.code, p.node) for p in problems_of(graph)}
    assert ("unconnected_input", "lonely") in found
    assert ("unconnected_input", "island_a") in found
    assert ("unreachable", "island_b") in found


def test_it_reports_everything_at_once():
    graph = {
        "nodes": [node("c", "classify"), node("x", "teleport"), node("a", "extract"), node("b", "summarise")],
        "edges": [edge("a", "b"), edge("b", "a"), edge("c", "nowhere")],
    }
    assert {"no_source", "missing_config", "unknown_type", "cycle", "dangling_edge"} <= codes(graph)


def test_empty_graph_is_one_clear_problem():
    assert [p.code for p in problems_of({"nodes": [], "edges": []})] == ["empty"]


@pytest.mark.parametrize(
    "data, fragment",
    [
        ([], "JSON object"),
        ({"nodes": {}, "edges": []}, "'nodes' must be a list"),
        ({"nodes": [{"id": 3, "type": "extract"}]}, "'id' must be a string"),
        ({"nodes": [{"type": "extract"}]}, "'id' is required"),
        ({"nodes": [node("a", "extract"), node("a", "extract")]}, "unique"),
        ({"nodes": [], "edges": [{"source": "a"}]}, "'target' is required"),
        ({"nodes": [], "extra": 1}, "Unknown top-level keys"),
        ({"nodes": [{"id": "a", "type": "x", "config": []}]}, "'config' must be an object"),
        ({"nodes": [node("a", "x") for _ in range(1)] * 0 + [dict(node("a", "x"), position="here")]}, "position"),
    ],
)
def test_malformed_graphs_raise_format_errors(data, fragment):
    with pytest.raises(GraphFormatError) as exc:
        parse_graph(data)
    assert any(fragment in p for p in exc.value.problems), exc.value.problems


def test_too_many_nodes_is_refused():
    with pytest.raises(GraphFormatError, match="limit is 500"):
        parse_graph({"nodes": [node(f"n{i}", "extract") for i in range(501)], "edges": []})


def test_plan_orders_every_edge_and_routes_ports():
    p = plan(parse_graph(triage_graph()))
    order = p.order
    for e in triage_graph()["edges"]:
        assert order.index(e["source"]) < order.index(e["target"])
    assert p.step("route").routes == {"confident": ("ext",), "else": ("rev",)}
    assert p.step("cls").config["method"] == "head"  # defaults are filled in


def test_plan_refuses_a_graph_with_errors():
    graph = triage_graph()
    graph["edges"].append(edge("out", "src"))
    with pytest.raises(PlanError):
        plan(parse_graph(graph))


def test_a_webhook_destination_must_be_registered_when_a_resolver_is_given():
    graph = {"nodes": [node("s", "source.upload"), node("w", "sink.webhook", destination="crm")],
             "edges": [edge("s", "w")]}
    found = {(p.code, p.node, p.field) for p in problems_of(graph, resolve_destination=lambda name: name == "erp")}
    assert ("unresolved_destination", "w", "destination") in found
    assert not [p for p in problems_of(graph, resolve_destination=lambda name: name == "crm")
                if p.code == "unresolved_destination"]
