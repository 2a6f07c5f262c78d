"""Validation: every problem of a graph at once, each with the node it belongs to and how to fix it."""

from __future__ import annotations

import graphlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

from .catalog import CATALOG, CRON, FIELD_NAME, MODEL_REF, ConfigField, NodeType, providers_of
from .spec import Graph
from .text import Text, _, either

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str  # English; a Text (graph/text.py), so its JSON also carries the msgid and parameters
    node: str | None = None
    nodes: tuple[str, ...] = ()
    edge: int | None = None
    field: str | None = None
    severity: str = ERROR

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = list(self.nodes)
        data["message"] = str(self.message)
        if isinstance(self.message, Text):
            data.update(self.message.to_json())  # msgid, params: what the page translates at display
        return data


AliasResolver = Callable[[str], bool]
EndpointResolver = Callable[[str], bool]


def _check_value(spec: ConfigField, value: Any, node_id: str) -> Text | None:
    """A message when a config value does not fit its field, else None."""
    where = {"node": node_id, "field": spec.label}
    kind = spec.kind
    if kind in {"string", "text", "endpoint", "destination"}:
        if not isinstance(value, str):
            return _("Node '%(node)s': %(field)s must be text.", **where)
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return _("Node '%(node)s': %(field)s must be a whole number.", **where)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _("Node '%(node)s': %(field)s must be a number.", **where)
    elif kind == "bool":
        if not isinstance(value, bool):
            return _("Node '%(node)s': %(field)s must be true or false.", **where)
    elif kind == "choice":
        if value not in spec.choices:
            return _("Node '%(node)s': %(field)s must be one of %(choices)s (got %(value)s).", **where,
                     choices=", ".join(spec.choices), value=repr(value))
    elif kind in {"list", "fields"}:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return _("Node '%(node)s': %(field)s must be a list of names.", **where)
        if spec.choices and (bad := [v for v in value if v not in spec.choices]):
            return _("Node '%(node)s': %(field)s: unknown %(bad)s; choose from %(choices)s.", **where,
                     bad=", ".join(bad), choices=", ".join(spec.choices))
        if kind == "fields" and (bad := [v for v in value if not FIELD_NAME.match(v)]):
            return _("Node '%(node)s': %(field)s: %(bad)s is not a field name (lower case letters, digits, _ and "
                     "dots).", **where, bad=", ".join(bad))
    elif kind == "mapping":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return _("Node '%(node)s': %(field)s must map each label to a description, e.g. "
                     "{\"billing\": \"questions about invoices\"}.", **where)
    elif kind == "model":
        if not isinstance(value, str) or not MODEL_REF.match(value):
            return _("Node '%(node)s': %(field)s must be a model alias like 'minilm@production' or a version like "
                     "'minilm:v2'.", **where)
    elif kind == "cron":
        if not isinstance(value, str) or not CRON.match(value.strip()):
            return _("Node '%(node)s': %(field)s must be a cron expression with five fields, e.g. '0 7 * * 1-5'.",
                     **where)
    elif kind == "url":
        parsed = urlparse(value) if isinstance(value, str) else None
        if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.netloc:
            return _("Node '%(node)s': %(field)s must be an http(s) URL.", **where)
    elif kind == "branches":
        return _check_branches(value, where)
    if kind in {"int", "float"} and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            return _("Node '%(node)s': %(field)s must be at least %(minimum)s.", **where, minimum=f"{spec.minimum:g}")
        if spec.maximum is not None and value > spec.maximum:
            return _("Node '%(node)s': %(field)s must be at most %(maximum)s.", **where, maximum=f"{spec.maximum:g}")
    return None


def _check_branches(value: Any, where: dict[str, Any]) -> Text | None:
    if not isinstance(value, list) or not value:
        return _("Node '%(node)s': %(field)s must be a non-empty list of branches.", **where)
    names = set()
    for index, branch in enumerate(value):
        if not isinstance(branch, dict):
            return _("Node '%(node)s': %(field)s: branch %(number)s must be an object with a name.", **where,
                     number=index + 1)
        name = branch.get("name")
        if not isinstance(name, str) or not name or name == "else":
            return _("Node '%(node)s': %(field)s: branch %(number)s needs a name (not 'else', which is always "
                     "there).", **where, number=index + 1)
        if name in names:
            return _("Node '%(node)s': %(field)s: two branches are called '%(branch)s'.", **where, branch=name)
        names.add(name)
        labels = branch.get("labels")
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
            return _("Node '%(node)s': %(field)s: branch '%(branch)s' labels must be a list of labels.", **where,
                     branch=name)
        for bound in ("min_confidence", "max_confidence"):
            b = branch.get(bound)
            if b is not None and (isinstance(b, bool) or not isinstance(b, int | float) or not 0 <= b <= 1):
                return _("Node '%(node)s': %(field)s: branch '%(branch)s' %(bound)s must be a number between 0 "
                         "and 1.", **where, branch=name, bound=bound)
        if not labels and branch.get("min_confidence") is None and branch.get("max_confidence") is None:
            return _("Node '%(node)s': %(field)s: branch '%(branch)s' needs labels or a confidence bound, or it "
                     "would catch everything.", **where, branch=name)
    return None


def _check_config(node_id: str, node_type: NodeType, config: dict[str, Any], problems: list[Problem],
                  resolve_alias: AliasResolver | None, resolve_endpoint: EndpointResolver | None,
                  resolve_destination: EndpointResolver | None = None) -> None:
    known = {f.name for f in node_type.config}
    for key in sorted(set(config) - known):
        problems.append(Problem("unknown_config",
                                _("Node '%(node)s': '%(key)s' is not a setting of %(type)s; remove it.",
                                  node=node_id, key=key, type=node_type.title),
                                node=node_id, field=key, severity=WARNING))
    merged = node_type.with_defaults(config)
    for spec in node_type.config:
        value = merged.get(spec.name)
        if value is None or value == "" or value == []:
            if spec.required:
                message = (_("Node '%(node)s': set '%(field)s'. %(help)s", node=node_id, field=spec.label,
                             help=spec.help) if spec.help else
                           _("Node '%(node)s': set '%(field)s'.", node=node_id, field=spec.label))
                problems.append(Problem("missing_config", message, node=node_id, field=spec.name))
            continue
        message = _check_value(spec, value, node_id)
        if message:
            problems.append(Problem("invalid_config", message, node=node_id, field=spec.name))
        elif (spec.kind == "model" and resolve_alias is not None and node_type.uses_model(merged)
                and not resolve_alias(value)):
            problems.append(Problem("unresolved_model", _("Node '%(node)s': no registered model matches '%(ref)s'. "
                                                          "Pick one from the registry or register it first.",
                                                          node=node_id, ref=value), node=node_id, field=spec.name))
        elif spec.kind == "endpoint" and resolve_endpoint is not None and not resolve_endpoint(value):
            problems.append(Problem("unresolved_endpoint",
                                    _("Node '%(node)s': no large-model endpoint is registered as '%(name)s'.",
                                      node=node_id, name=value),
                                    node=node_id, field=spec.name))
        elif spec.kind == "destination" and resolve_destination is not None and not resolve_destination(value):
            problems.append(Problem("unresolved_destination",
                                    _("Node '%(node)s': no webhook destination is registered as '%(name)s'; an "
                                      "administrator registers destinations.", node=node_id, name=value),
                                    node=node_id, field=spec.name))
    if node_type.type == "classify" and merged.get("method") == "zero_shot":
        labels = merged.get("labels")
        if not isinstance(labels, dict) or len(labels) < 2:
            problems.append(Problem("missing_config",
                                    _("Node '%(node)s': zero-shot needs at least two labels with descriptions.",
                                      node=node_id),
                                    node=node_id, field="labels"))
    if node_type.type == "cascade":
        small, large = merged.get("small_threshold"), merged.get("large_threshold")
        if isinstance(small, int | float) and not 0 < small <= 1:
            problems.append(Problem("invalid_config",
                                    _("Node '%(node)s': the small-model threshold must be above 0.", node=node_id),
                                    node=node_id, field="small_threshold"))
        if merged.get("endpoint") and not merged.get("labels"):
            problems.append(Problem("missing_config",
                                    _("Node '%(node)s': give the label set the large model chooses from.",
                                      node=node_id),
                                    node=node_id, field="labels"))
        if isinstance(small, int | float) and isinstance(large, int | float) and merged.get("endpoint") and large > 1:
            problems.append(Problem("invalid_config",
                                    _("Node '%(node)s': the large-model threshold must be at most 1.", node=node_id),
                                    node=node_id, field="large_threshold"))


def validate(graph: Graph, *, resolve_alias: AliasResolver | None = None,
             resolve_endpoint: EndpointResolver | None = None,
             resolve_destination: EndpointResolver | None = None) -> list[Problem]:
    """Every problem of the graph. An empty list means the graph can run."""
    if not graph.nodes:
        return [Problem("empty", _("The workflow is empty: add a source, at least one step and a sink."))]
    problems: list[Problem] = []
    types = _check_nodes(graph, problems, resolve_alias, resolve_endpoint, resolve_destination)
    good_edges, incoming = _check_edges(graph, types, problems)
    order = _check_cycles(graph, good_edges, problems)
    sources = _check_ends(graph, types, incoming, problems)
    _check_reachable(graph, sources, good_edges, incoming, problems)
    if order is not None:
        _check_fields(graph, order, types, good_edges, problems)
    return problems


def _check_nodes(graph: Graph, problems: list[Problem], resolve_alias: AliasResolver | None,
                 resolve_endpoint: EndpointResolver | None,
                 resolve_destination: EndpointResolver | None = None) -> dict[str, NodeType]:
    """Each node's type is known and its config is complete; the known types by node id."""
    types: dict[str, NodeType] = {}
    for node in graph.nodes:
        node_type = CATALOG.get(node.type)
        if node_type is None:
            problems.append(Problem("unknown_type", _("Node '%(node)s' has unknown type '%(type)s'. Known types: "
                                                      "%(types)s.", node=node.id, type=node.type,
                                                      types=", ".join(sorted(CATALOG))), node=node.id))
            continue
        types[node.id] = node_type
        _check_config(node.id, node_type, node.config, problems, resolve_alias, resolve_endpoint, resolve_destination)
    return types


def _check_edges(graph: Graph, types: dict[str, NodeType],
                 problems: list[Problem]) -> tuple[list, dict[str, list[int]]]:
    """Both ends exist, ports exist, no self-loop, no duplicate. Only good edges take part in the
    checks after this one; returns them, and the good incoming edges' indexes by target node."""
    nodes = graph.by_id
    good_edges = []
    seen_edges = set()
    incoming: dict[str, list[int]] = defaultdict(list)
    for index, edge in enumerate(graph.edges):
        ok = True
        for end, node_id in (("source", edge.source), ("target", edge.target)):
            if node_id not in nodes:
                message = (_("Edge %(edge)s: its source '%(node)s' is not a node; delete the edge or add the node.",
                             edge=edge.describe(), node=node_id) if end == "source" else
                           _("Edge %(edge)s: its target '%(node)s' is not a node; delete the edge or add the node.",
                             edge=edge.describe(), node=node_id))
                problems.append(Problem("dangling_edge", message, edge=index))
                ok = False
        if not ok:
            continue
        src_type, dst_type = types.get(edge.source), types.get(edge.target)
        if src_type is not None:
            ports = src_type.output_ports(src_type.with_defaults(nodes[edge.source].config))
            if edge.source_port not in ports:
                where = {"edge": edge.describe(), "node": edge.source, "port": edge.source_port}
                message = (_("Edge %(edge)s: '%(node)s' has no output '%(port)s' (it has %(ports)s).", **where,
                             ports=", ".join(ports)) if ports else
                           _("Edge %(edge)s: '%(node)s' has no output '%(port)s' (it has no outputs).", **where))
                problems.append(Problem("unknown_port", message, node=edge.source, edge=index))
                ok = False
        if dst_type is not None and edge.target_port not in dst_type.inputs:
            where = {"edge": edge.describe(), "node": edge.target, "port": edge.target_port}
            message = (_("Edge %(edge)s: '%(node)s' has no input '%(port)s' (it has %(ports)s).", **where,
                         ports=", ".join(dst_type.inputs)) if dst_type.inputs else
                       _("Edge %(edge)s: '%(node)s' has no input '%(port)s' (it has no inputs).", **where))
            problems.append(Problem("unknown_port", message, node=edge.target, edge=index))
            ok = False
        if edge.source == edge.target:
            problems.append(Problem("cycle", _("Edge %(edge)s connects '%(node)s' to itself.",
                                               edge=edge.describe(), node=edge.source),
                                    node=edge.source, nodes=(edge.source,), edge=index))
            ok = False
        key = (edge.source, edge.source_port, edge.target, edge.target_port)
        if key in seen_edges:
            problems.append(Problem("duplicate_edge", _("Edge %(edge)s appears twice.", edge=edge.describe()),
                                    edge=index, severity=WARNING))
            ok = False
        seen_edges.add(key)
        if ok:
            good_edges.append(edge)
            incoming[edge.target].append(index)
    return good_edges, incoming


def _check_cycles(graph: Graph, good_edges: list, problems: list[Problem]) -> list[str] | None:
    """The nodes in topological order, or None after reporting the cycle graphlib found (the field
    check needs an order, so it is skipped then; every other check still runs)."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in graph.nodes:
        sorter.add(node.id)
    for edge in good_edges:
        sorter.add(edge.target, edge.source)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = tuple(dict.fromkeys(exc.args[1]))
        problems.append(Problem("cycle", _("These nodes form a cycle: %(cycle)s. Items would loop forever; remove "
                                           "one of the edges.", cycle=" → ".join(exc.args[1])),
                                node=cycle[0], nodes=cycle))
        return None


def _check_ends(graph: Graph, types: dict[str, NodeType], incoming: dict[str, list[int]],
                problems: list[Problem]) -> list[str]:
    """A source to start from, a sink to keep results, and an input on every node that needs one;
    returns the source node ids."""
    sources = [n.id for n in graph.nodes if n.id in types and types[n.id].is_source]
    if not sources:
        problems.append(Problem("no_source",
                                _("The workflow has no source: add an Upload, REST intake or Schedule node.")))
    if not any(types[n].is_sink for n in types):
        # An error, not a warning: a run without a sink would work through every item and keep nothing.
        problems.append(Problem("no_sink", _("The workflow has no sink: add a Results table so results are kept.")))
    for node in graph.nodes:
        node_type = types.get(node.id)
        if node_type and not node_type.is_source and not incoming.get(node.id):
            problems.append(Problem("unconnected_input", _("Node '%(node)s' has nothing connected to its input; "
                                                           "connect it to an upstream node or delete it.",
                                                           node=node.id), node=node.id))
    return sources


def _check_reachable(graph: Graph, sources: list[str], good_edges: list, incoming: dict[str, list[int]],
                     problems: list[Problem]) -> None:
    """Every connected node can be reached from a source over good edges."""
    successors: dict[str, list[str]] = defaultdict(list)
    for edge in good_edges:
        successors[edge.source].append(edge.target)
    reached = set(sources)
    stack = list(sources)
    while stack:
        for nxt in successors[stack.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                stack.append(nxt)
    for node in graph.nodes:
        if node.id not in reached and incoming.get(node.id) and sources:
            problems.append(Problem("unreachable", _("Node '%(node)s' cannot be reached from any source.",
                                                     node=node.id), node=node.id))


def _check_fields(graph: Graph, order: list[str], types: dict[str, NodeType], edges: list,
                  problems: list[Problem]) -> None:
    """Along every path, a node's needed fields must be added upstream (intersection over its inputs)."""
    nodes = graph.by_id
    preds: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        preds[edge.target].append(edge.source)
    available_out: dict[str, frozenset[str] | None] = {}
    for node_id in order:
        node_type = types.get(node_id)
        if node_type is None:
            available_out[node_id] = None  # unknown: do not cascade false alarms
            continue
        config = node_type.with_defaults(nodes[node_id].config)
        if node_type.is_source:
            available_in: frozenset[str] | None = frozenset()
        else:
            ins = [available_out.get(p) for p in preds[node_id]]
            if not ins or any(i is None for i in ins):
                available_in = None
            else:
                available_in = frozenset.intersection(*[i for i in ins if i is not None])
        if available_in is not None:
            for needed in sorted(node_type.needs(config)):
                if needed in available_in:
                    continue
                providers = [p for p in providers_of(needed) if p != node_type.type]
                where = {"node": node_id, "field": needed}
                message = (_("Node '%(node)s' needs the field '%(field)s', which no node on every path before it "
                             "adds. Add a %(types)s node upstream.", **where,
                             types=either([CATALOG[p].title for p in providers])) if providers else
                           _("Node '%(node)s' needs the field '%(field)s', which no node on every path before it "
                             "adds. Add it to the source's item fields.", **where))
                problems.append(Problem("missing_field", message, node=node_id, field=needed))
            available_out[node_id] = available_in | node_type.adds(config)
        else:
            available_out[node_id] = None


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == ERROR]
