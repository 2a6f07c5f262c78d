from __future__ import annotations

import copy
import subprocess
import sys

from tests.builders import edge, node, triage_graph
from workflows.graph import diff, parse_graph


def test_diff_lists_nodes_edges_and_config_changes():
    old = triage_graph()
    new = copy.deepcopy(old)
    new["nodes"] = [n for n in new["nodes"] if n["id"] != "rev"]
    new["edges"] = [e for e in new["edges"] if "rev" not in (e["source"], e["target"])]
    new["nodes"].append(node("sum", "summarise", sentences=3))
    new["edges"] += [edge("route", "sum", source_port="else"), edge("sum", "out")]
    new["nodes"][1]["config"]["model"] = "tickets:v2"
    new["nodes"][1]["config"]["method"] = "tfidf"
    new["nodes"][0]["position"] = {"x": 99, "y": 99}
    d = diff(parse_graph(old), parse_graph(new))
    assert [n["id"] for n in d["nodes"]["added"]] == ["sum"]
    assert [n["id"] for n in d["nodes"]["removed"]] == ["rev"]
    assert d["nodes"]["changed"] == [{"id": "cls", "config": [
        {"key": "method", "change": "added", "new": "tfidf"},
        {"key": "model", "change": "changed", "old": "tickets@production", "new": "tickets:v2"},
    ]}]
    assert d["nodes"]["moved"] == ["src"]
    assert {(e["source"], e["target"]) for e in d["edges"]["added"]} == {("route", "sum"), ("sum", "out")}
    assert {(e["source"], e["target"]) for e in d["edges"]["removed"]} == {("route", "rev"), ("rev", "out")}
    assert d["identical"] is False


def test_diff_of_a_graph_with_itself_is_identical():
    g = parse_graph(triage_graph())
    assert diff(g, g)["identical"] is True


def test_graph_package_imports_without_django():
    code = "import sys, workflows.graph; assert not any(m.startswith('django') for m in sys.modules), 'django imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
