"""Hypothesis strategies for workflow graph JSON: valid graphs built by construction, near-valid ones
(a valid graph with a few mutations, so the validator's deep paths run) and arbitrary JSON."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from workflows.graph import CATALOG

NODE_IDS = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)

json_scalars = (st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
                | st.text(max_size=12))
# Wrong types in equal measure: what a hand-edited file or a buggy script puts where a setting belongs.
wrong_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(), st.text(max_size=12),
                         st.lists(json_scalars, max_size=3),
                         st.dictionaries(st.text(max_size=6), json_scalars, max_size=3))
json_values = st.recursive(json_scalars,
                           lambda inner: (st.lists(inner, max_size=4)
                                          | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


# A config every check accepts, per node type. Routes branch on `text`, the one field every path carries.
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "source.upload": {"fields": ["text", "subject"]},
    "source.rest": {"fields": ["text", "lang"]},
    "source.schedule": {"cron": "0 7 * * 1-5", "dataset": "weekly"},
    "source.webhook": {"fields": ["text", "lang"]},
    "source.mailbox": {},
    "ocr": {"input_field": "text"},
    "classify": {"model": "tickets@production"},
    "extract": {"patterns": ["email", "iban"], "entities": []},
    "summarise": {"sentences": 2},
    "embed": {},
    "cascade": {"model": "tickets@production", "small_threshold": 0.8},
    "llm": {"endpoint": "local", "prompt": "Answer this: {text}"},
    "route": {"label_field": "text", "branches": [{"name": "urgent", "labels": ["x"]}]},
    "review": {"queue": "default"},
    "sink.table": {},
    "sink.export": {"format": "jsonl"},
    "sink.webhook": {"destination": "crm"},
}


def _config(node_type: str, draw) -> dict[str, Any]:
    """BASE_CONFIG with some variety drawn in."""
    config = copy.deepcopy(BASE_CONFIG[node_type])
    if node_type == "extract":
        config["patterns"] = draw(st.lists(st.sampled_from(["email", "iban", "vat", "amount"]), unique=True))
    elif node_type == "summarise":
        config["sentences"] = draw(st.integers(1, 20))
    elif node_type == "cascade":
        config["small_threshold"] = draw(st.floats(0.05, 1))
    elif node_type == "route":
        names = draw(st.lists(NODE_IDS.filter(lambda n: n != "else"), min_size=1, max_size=3, unique=True))
        config["branches"] = [{"name": n, "labels": ["x"]} for n in names]
    return config


SOURCES = ["source.upload", "source.rest", "source.schedule", "source.webhook", "source.mailbox"]
# Hypothesis leans towards the first choices: the types with the most to check come first.
STEPS = ["route", "cascade", "llm", "extract", "classify", "summarise", "embed", "review"]
SINKS = ["sink.table", "sink.export", "sink.webhook"]


@st.composite
def valid_graphs(draw, max_steps: int = 6) -> dict[str, Any]:
    """A graph that validates without errors: sources, then steps each fed by earlier nodes, then sinks."""
    types = ([draw(st.sampled_from(SOURCES)) for _ in range(draw(st.integers(1, 2)))]
             + draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=max_steps))
             + draw(st.lists(st.sampled_from(SINKS), min_size=1, max_size=2)))
    ids = draw(st.lists(NODE_IDS, min_size=len(types), max_size=len(types), unique=True))
    nodes = [{"id": i, "type": t, "config": _config(t, draw), "position": {"x": 10 * n, "y": 0}}
             for n, (i, t) in enumerate(zip(ids, types, strict=True))]
    sources = sum(t in SOURCES for t in types)
    edges = []
    for index in range(sources, len(nodes)):
        # Every source reaches a later node, so every node hangs below a source.
        feeders = [n for n in nodes[:index] if n["type"] not in SINKS]
        chosen = draw(st.lists(st.sampled_from(feeders), min_size=1, max_size=3, unique_by=lambda n: n["id"]))
        for feeder in chosen:
            node_type = CATALOG[feeder["type"]]
            port = draw(st.sampled_from(node_type.output_ports(node_type.with_defaults(feeder["config"]))))
            edges.append({"source": feeder["id"], "source_port": port, "target": nodes[index]["id"],
                          "target_port": "in"})
    return {"nodes": nodes, "edges": edges}


def _mutations(graph: dict[str, Any], draw) -> None:
    # Earlier mutations may have broken the shape: mutate what is still a list of objects.
    nodes = graph["nodes"] if isinstance(graph.get("nodes"), list) else []
    edges = graph["edges"] if isinstance(graph.get("edges"), list) else []
    objects = [n for n in nodes
               if isinstance(n, dict) and isinstance(n.get("config"), dict) and isinstance(n.get("id"), str)]
    kind = draw(st.sampled_from([
        "drop_node", "drop_edge", "back_edge", "self_loop", "dangling", "bad_port", "retype", "unknown_type",
        "config_value", "config_value", "config_value", "config_value", "config_junk", "wrong_field_type",
        "duplicate_id", "duplicate_edge", "top_level", "shape",
    ]))
    node = draw(st.sampled_from(objects[::-1])) if objects else None  # steps and sinks first: more to check there
    edge_objects = [e for e in edges if isinstance(e, dict)]
    if kind == "drop_node" and node:
        nodes.remove(node)
    elif kind == "drop_edge" and edges:
        edges.remove(draw(st.sampled_from(edges)))
    elif kind == "back_edge" and len({n["id"] for n in objects}) > 1:
        a, b = draw(st.lists(st.sampled_from(objects), min_size=2, max_size=2, unique_by=lambda n: n["id"]))
        edges.append({"source": a["id"], "source_port": "out", "target": b["id"], "target_port": "in"})
    elif kind == "self_loop" and node:
        edges.append({"source": node["id"], "source_port": "out", "target": node["id"], "target_port": "in"})
    elif kind == "dangling" and node:
        edges.append({"source": node["id"], "source_port": "out", "target": draw(NODE_IDS) + "_ghost",
                      "target_port": "in"})
    elif kind == "bad_port" and edge_objects:
        edge = draw(st.sampled_from(edge_objects))
        edge[draw(st.sampled_from(["source_port", "target_port"]))] = draw(
            st.sampled_from(["maybe", "", "else", "error", "out"]))
    elif kind == "retype" and node:
        node["type"] = draw(st.sampled_from(sorted(CATALOG)))
    elif kind == "unknown_type" and node:
        node["type"] = draw(st.sampled_from(["teleport", "", "Source.Upload"]))
    elif kind == "config_value" and node:
        # One of the node's own settings (else any node type's), set to any JSON value: wrong types, shapes, ranges.
        own = [f.name for f in CATALOG[node["type"]].config] if node["type"] in CATALOG else []
        names = own if own and draw(st.integers(0, 3)) else sorted({f.name for t in CATALOG.values() for f in t.config})
        node["config"][draw(st.sampled_from(names))] = draw(wrong_values | json_values)
    elif kind == "config_junk" and node:
        node["config"] = draw(json_values)
    elif kind == "wrong_field_type" and (node or edge_objects):
        target = draw(st.sampled_from([x for x in [node, *edge_objects[:1]] if x]))
        target[draw(st.sampled_from(sorted(target) or ["id"]))] = draw(json_values)
    elif kind == "duplicate_id" and len(objects) > 1:
        objects[-1]["id"] = objects[0]["id"]
    elif kind == "duplicate_edge" and edge_objects:
        edges.append(dict(draw(st.sampled_from(edge_objects))))
    elif kind == "top_level":
        graph[draw(st.sampled_from(["nodes", "edges", "extra"]))] = draw(json_values)
    elif kind == "shape" and nodes:
        nodes[draw(st.integers(0, len(nodes) - 1))] = draw(json_values)


def mutate(graph: dict[str, Any], draw, max_mutations: int = 3) -> dict[str, Any]:
    """A copy of the graph with one to `max_mutations` random faults."""
    graph = copy.deepcopy(graph)
    for _ in range(draw(st.integers(1, max_mutations))):
        _mutations(graph, draw)
    return graph


@st.composite
def near_valid_graphs(draw, max_mutations: int = 3) -> dict[str, Any]:
    """A valid graph with a few random faults: the input a designer or a script gets wrong."""
    return mutate(draw(valid_graphs()), draw, max_mutations)


def any_graph_json() -> st.SearchStrategy[Any]:
    """Mostly near-valid graphs, some valid ones, some arbitrary JSON."""
    near = near_valid_graphs()
    return st.one_of(near, near, near, valid_graphs(), json_values,
                     st.fixed_dictionaries({"nodes": st.lists(json_values, max_size=4),
                                            "edges": st.lists(json_values, max_size=4)}))
