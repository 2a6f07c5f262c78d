"""The layout's rules, read from the source with `ast` (every import, at module level or inside a
function), so a change that breaks a direction fails here before anyone has to find the cycle.

The layers, lowest first: pure modules (graph/, runtimes/, documents/, statuses, latency) · models/ ·
notifications/ · design/ · engine/ · governance/, kpi/, inbound/ and lifecycle/ · pages (views/), API (api/) and
sockets (live/).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workflows"
PURE = ("workflows.graph", "workflows.runtimes", "workflows.documents", "workflows.statuses", "workflows.latency")
# What the live sockets may read: the executor's observer hook and read-side modules, never the
# engine's write path (they run in the web process and must not reach into a worker's machinery).
LIVE_MAY_IMPORT = ("workflows.live", "workflows.engine.observers", "workflows.engine.results", "workflows.models",
                   "workflows.access", "workflows.roles", "workflows.graph", "workflows.statuses", "workflows.latency")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int
    local: bool  # inside a function: allowed only with a reason on the line or the line before
    reason: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from workflows.engine import executor` imports the module workflows.engine.executor
            targets = [f"{module}.{alias.name}"
                       if (ROOT / Path(*f"{module}.{alias.name}".split("."))).with_suffix(".py").exists()
                       or (ROOT / Path(*f"{module}.{alias.name}".split(".")) / "__init__.py").exists() else module
                       for alias in node.names]
        else:
            continue
        here, before = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
        reason = "#" in here or "#" in before
        local = id(node) not in top and not _in_type_checking(tree, node)
        found.extend(Import(name, target, node.lineno, local, reason) for target in targets)
    return found


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    for block in tree.body:
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
            if any(child is node for child in ast.walk(block)):
                return True
    return False


def project_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) if "migrations" not in path.parts for i in imports_of(path)]


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def broken(rule: str, imports: list[Import]) -> str:
    return rule + ":\n" + "\n".join(f"  {i.module}:{i.line} imports {i.target}" for i in imports)


IMPORTS = project_imports()


def test_pages_and_api_do_not_borrow_from_each_other():
    bad = [i for i in IMPORTS if (within(i.module, "workflows.views") and within(i.target, "workflows.api"))
           or (within(i.module, "workflows.api") and within(i.target, "workflows.views"))]
    assert not bad, broken("views/ and api/ share services through the layers below, never each other", bad)


@pytest.mark.parametrize("lower, higher", [
    ("workflows.models", ("workflows.engine", "workflows.design", "workflows.governance", "workflows.kpi",
                          "workflows.live", "workflows.views", "workflows.api", "workflows.access",
                          "workflows.notifications", "workflows.inbound", "workflows.lifecycle")),
    # anyone may tell people something: notifications sit just above the tables
    ("workflows.notifications", ("workflows.engine", "workflows.design", "workflows.governance", "workflows.kpi",
                                 "workflows.live", "workflows.views", "workflows.api", "workflows.inbound",
                                 "workflows.lifecycle")),
    ("workflows.design", ("workflows.engine", "workflows.governance", "workflows.kpi", "workflows.live",
                          "workflows.views", "workflows.api", "workflows.lifecycle")),
    ("workflows.engine", ("workflows.governance", "workflows.kpi", "workflows.live", "workflows.views",
                          "workflows.api", "workflows.design.versions", "workflows.design.gallery",
                          "workflows.inbound", "workflows.lifecycle")),
    # mailboxes and signed webhooks feed runs through the engine, as pages and the API do
    ("workflows.inbound", ("workflows.kpi", "workflows.live", "workflows.views", "workflows.api",
                           "workflows.lifecycle")),
    ("workflows.governance", ("workflows.kpi", "workflows.live", "workflows.views", "workflows.api",
                              "workflows.inbound", "workflows.lifecycle")),
    ("workflows.kpi", ("workflows.live", "workflows.views", "workflows.api", "workflows.lifecycle")),
    # the data lifecycle sits beside governance: it purges what the engine wrote and freezes KPI weeks
    ("workflows.lifecycle", ("workflows.live", "workflows.views", "workflows.api", "workflows.inbound")),
])
def test_lower_layers_never_import_higher_ones(lower, higher):
    bad = [i for i in IMPORTS if within(i.module, lower) and within(i.target, *higher)]
    assert not bad, broken(f"{lower} sits below {', '.join(higher)}", bad)


def test_pure_packages_import_no_django_and_nothing_of_the_project_above_them():
    bad = [i for i in IMPORTS if within(i.module, *PURE)
           and (within(i.target, "django", "rest_framework", "channels")
                or (within(i.target, "workflows") and not within(i.target, *PURE)))]
    assert not bad, broken("graph/, runtimes/, statuses and latency are pure Python", bad)


def test_live_sockets_read_only_the_observer_hook_and_read_side_modules():
    bad = [i for i in IMPORTS if within(i.module, "workflows.live") and within(i.target, "workflows")
           and not within(i.target, *LIVE_MAY_IMPORT)]
    assert not bad, broken("live/ may import only " + ", ".join(LIVE_MAY_IMPORT), bad)


def test_function_local_project_imports_say_why():
    bad = [i for i in IMPORTS if i.local and within(i.target, "workflows") and not i.reason]
    assert not bad, broken("a project import inside a function needs its one-line reason "
                           "(a comment on it or above it)", bad)


def test_one_extract_handler():
    registrations = [(path, line) for path in PACKAGE.rglob("*.py") for line in path.read_text().splitlines()
                     if line.strip() == '@register("extract")']
    assert len(registrations) == 1, registrations


def test_pure_packages_import_alone_in_a_fresh_interpreter():
    """Every module of graph/ and runtimes/ (found, not listed by hand) imports without Django, torch
    or the Hugging Face stack: workers and the validator load them without the web framework."""
    modules = [module_name(p) for package in ("graph", "runtimes", "documents")
               for p in sorted((PACKAGE / package).rglob("*.py"))]
    modules += ["workflows.statuses", "workflows.latency"]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'torch', 'transformers', 'optimum', "
            "'rest_framework'})\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
