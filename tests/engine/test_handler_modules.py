"""Where handlers come from: the flow nodes always, model nodes through ENGINE_HANDLER_MODULES, and a
module path an installation may still name from before the handlers moved to workflows/engine/nodes/."""

from __future__ import annotations

import sys

import pytest
from django.test import override_settings

from workflows.engine.nodes import base


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(base, "HANDLERS", {})
    monkeypatch.setattr(base, "_loaded", False)
    handler_modules = ("flow", "webhook", "models", "llm")
    for name in [m for m in sys.modules if m.startswith("workflows.engine.nodes.") and m.endswith(handler_modules)]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, they register into the empty registry
    return base.HANDLERS


@override_settings(ENGINE_HANDLER_MODULES=["workflows.runtimes.nodes"])
def test_the_old_module_path_in_the_setting_still_loads_the_model_handlers(fresh_registry):
    base.load_handler_modules()
    assert {"classify", "extract", "cascade", "llm", "route", "sink.table"} <= set(fresh_registry)


@override_settings(ENGINE_HANDLER_MODULES=[])
def test_the_flow_nodes_are_there_without_any_setting(fresh_registry):
    base.load_handler_modules()
    assert {"source.upload", "route", "review", "sink.table", "sink.export", "sink.webhook"} <= set(fresh_registry)
    assert "classify" not in fresh_registry
    with pytest.raises(LookupError, match="no handler is registered for node type 'classify'"):
        base.handler_for("classify")
