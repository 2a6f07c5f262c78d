"""Every user-visible string of the Python code goes through the translation machinery.

1. A scan (`ast`) of the Python modules fails on a string literal handed to a user-facing sink — a
   message, a ValidationError, a form's label or help, an API `detail`, PermissionDenied, Http404, an
   HttpResponse body, a validation problem, a node's palette text — unless it is wrapped in gettext &
   co. (or, in the pure packages, in the `_()` marker of workflows/graph/text.py). A new sink is one
   line of SINKS; a literal that must stay English says so with `# i18n: English` on its line.
2. With a tiny catalogue written here (a .mo in a temporary LOCALE_PATHS), a page and API errors
   answered to `Accept-Language: it` carry its translations, English ones are unchanged, and texts
   made in the pure packages (a validation problem with a translated field label in it) are
   translated where they are shown.
3. With the project's real catalogue (locale/it/LC_MESSAGES/django.mo, made by the lead's
   `make translations` + `compilemessages`): the same requests answer in Italian. Skipped until the
   compiled catalogue exists.
"""

from __future__ import annotations

import ast
import json
import struct
from array import array
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from tests.builders import make_workflow
from workflows.design import gallery, texts
from workflows.graph import CATALOG, parse_graph, validate
from workflows.graph.catalog import GROUPS
from workflows.graph.text import Text

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workflows"
# Not scanned: migrations; management commands print to an operator's terminal (English by choice).
SKIPPED = ("migrations", "management")
REAL_MO = ROOT / "locale" / "it" / "LC_MESSAGES" / "django.mo"

TRANSLATORS = {"gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy",
               "npgettext", "_"}
MESSAGE_LEVELS = {"debug", "info", "success", "warning", "error"}
# Exceptions whose message a person reads (a page shows it, DRF answers it as `detail`): first argument.
SHOWN_EXCEPTIONS = {"ValidationError", "PermissionDenied", "Http404", "NotFound", "ParseError", "IntakeError",
                    "StartError", "ModelRejected", "GraphFormatError", "PromotionRefused", "BadFilter",
                    "UploadTooLarge"}
RESPONSES = {"Response", "JsonResponse"}
BODY_KEYS = {"detail", "message", "error"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    sink: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.sink}: {self.text!r}"


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _receiver(func: ast.expr) -> str:
    return _name(func.value) if isinstance(func, ast.Attribute) else ""


def _literals(node: ast.expr | None) -> list[ast.expr]:
    """The untranslated literal text inside an argument: a str constant with a letter, an f-string, a
    literal formatted with % or .format(), and the same inside lists, dicts and conditionals. Calls to
    gettext & co. are translated; a name or any other expression is not judged here."""
    if node is None:
        return []
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) and any(c.isalpha() for c in node.value) else []
    if isinstance(node, ast.JoinedStr):
        return [node]
    if isinstance(node, ast.Call):
        if _name(node.func) in TRANSLATORS:
            return []
        if _name(node.func) == "format" and isinstance(node.func, ast.Attribute):
            return _literals(node.func.value)
        return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return _literals(node.left) + (_literals(node.right) if isinstance(node.op, ast.Add) else [])
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [found for element in node.elts for found in _literals(element)]
    if isinstance(node, ast.ListComp | ast.GeneratorExp):
        return _literals(node.elt)
    if isinstance(node, ast.Dict):
        return [found for value in node.values for found in _literals(value)]
    return []


def _body_values(node: ast.expr | None) -> list[ast.expr]:
    """The values of an API body's `detail` (or `message`, `error`) keys."""
    if not isinstance(node, ast.Dict):
        return []
    return [v for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and k.value in BODY_KEYS]


def _arg(call: ast.Call, index: int, keyword: str | None = None) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None) if keyword else None


def sinks(call: ast.Call) -> list[tuple[str, ast.expr | None]]:
    """(sink name, argument a person reads) for one call."""
    name, receiver = _name(call.func), _receiver(call.func)
    found: list[tuple[str, ast.expr | None]] = []
    if receiver == "messages" and name in MESSAGE_LEVELS:
        found.append((f"messages.{name}", _arg(call, 1, "message")))
    elif receiver == "messages" and name == "add_message":
        found.append(("messages.add_message", _arg(call, 2, "message")))
    if name in SHOWN_EXCEPTIONS:
        found.append((name, _arg(call, 0, "message")))
    if name.startswith("HttpResponse"):
        found.append((name, _arg(call, 0, "content")))
    if name in RESPONSES:
        found += [(f"{name}(detail)", value) for value in _body_values(_arg(call, 0, "data"))]
    if receiver == "forms":
        found += [(f"forms.{name}({k.arg}=)", k.value) for k in call.keywords if k.arg in {"label", "help_text"}]
    if name == "Problem":
        found.append(("Problem", _arg(call, 1, "message")))
    if name == "append" and receiver in {"problems", "risks"}:
        found.append((f"{receiver}.append", _arg(call, 0)))
    if name == "ConfigField":
        found += [("ConfigField(label)", _arg(call, 2, "label")), ("ConfigField(help=)", _arg(call, 99, "help"))]
    if name == "NodeType":
        found += [("NodeType(title)", _arg(call, 2, "title")), ("NodeType(description)", _arg(call, 3, "description"))]
    return found


def _meta_texts(tree: ast.Module) -> list[tuple[str, ast.expr]]:
    """A ModelForm's `Meta.labels` and `Meta.help_texts` values."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Meta":
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Dict)
                        and any(isinstance(t, ast.Name) and t.id in {"labels", "help_texts"}
                                for t in statement.targets)):
                    found += [("Meta." + statement.targets[0].id, v) for v in statement.value.values]  # type: ignore
    return found


def scan_source(source: str, path: str = "<source>") -> list[Finding]:
    tree = ast.parse(source)
    lines = source.splitlines()
    pairs = [pair for node in ast.walk(tree) if isinstance(node, ast.Call) for pair in sinks(node)]
    pairs += _meta_texts(tree)
    findings = []
    for sink, argument in pairs:
        for literal in _literals(argument):
            if "# i18n: English" in lines[literal.lineno - 1]:
                continue
            text = ast.unparse(literal)
            findings.append(Finding(path, literal.lineno, sink, text[:90]))
    return findings


def python_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not set(p.relative_to(PACKAGE).parts) & set(SKIPPED)]


def scan_tree() -> list[Finding]:
    return [f for path in python_modules()
            for f in scan_source(path.read_text(), str(path.relative_to(ROOT)))]


# --- 1. the scan ---------------------------------------------------------------------------------

SINK_EXAMPLES = '''
messages.success(request, "Saved.")
messages.error(request, f"Run {run.pk} failed.")
raise ValidationError("Pick a label.")
raise serializers.ValidationError({"week": "Write the week as 2025-W14."})
raise PermissionDenied(f"Your role does not allow this ({capability}).")
raise Http404("No such workflow.")
return HttpResponse("Pick two existing versions to compare.", status=400)
return Response({"detail": "No baseline yet."}, status=404)
return JsonResponse({"detail": "Nothing at %s" % path})
name = forms.CharField(label="Name", help_text="Who you are.")
raise IntakeError("The file is empty.")
raise StartError(["There are no items to run."])
problems.append("Node '{}' has no input.".format(node))
Problem("empty", "The workflow is empty.")
ConfigField("model", "model", "Model", help="A registered model alias.")
NodeType("ocr", "models", "OCR", "Read the text of a scanned page.")
class Meta:
    labels = {"sla_hours": "SLA target (hours)"}
'''
WRAPPED_EXAMPLES = '''
messages.success(request, gettext("Saved."))
messages.error(request, gettext("Run %(run)s failed.") % {"run": run.pk})
raise ValidationError(gettext("Pick a label."))
raise serializers.ValidationError({"week": gettext("Write the week as 2025-W14.")})
raise PermissionDenied(gettext("Your role does not allow this (%(capability)s).") % {"capability": capability})
raise Http404(gettext("No such workflow."))
return HttpResponse(gettext("Pick two existing versions to compare."), status=400)
return HttpResponse(body, content_type="text/plain; charset=utf-8")
return Response({"detail": gettext("No baseline yet."), "code": "no_baseline"}, status=404)
name = forms.CharField(label=gettext_lazy("Name"), help_text=gettext_lazy("Who you are."))
raise IntakeError(exc.message)
problems.append(_("Node '%(node)s' has no input.", node=node))
Problem("empty", _("The workflow is empty."))
ConfigField("model", "model", _("Model"), help=_("A registered model alias."))
NodeType("ocr", "models", _("OCR"), _("Read the text of a scanned page."))
return HttpResponse("ok")  # i18n: English
class Meta:
    labels = {"sla_hours": _("SLA target (hours)")}
'''


def test_the_scan_finds_a_literal_in_every_kind_of_sink():
    found = scan_source(SINK_EXAMPLES)
    assert len(found) == 20, "\n".join(map(str, found))
    assert {f.sink for f in found} >= {"messages.success", "ValidationError", "PermissionDenied", "Http404",
                                       "HttpResponse", "Response(detail)", "forms.CharField(label=)", "IntakeError",
                                       "StartError", "problems.append", "Problem", "ConfigField(label)",
                                       "NodeType(description)", "Meta.labels"}


def test_the_scan_accepts_translated_texts_and_what_it_cannot_judge():
    assert scan_source(WRAPPED_EXAMPLES) == []


def test_no_user_visible_literal_is_left_untranslated_in_the_python_code():
    found = scan_tree()
    assert not found, (f"{len(found)} user-visible strings bypass translation (wrap them in gettext(...) with "
                       "named %(placeholders)s, or `_()` in graph/; see tests/test_i18n_python.py):\n"
                       + "\n".join(map(str, found[:60])))


# --- texts made in the pure packages --------------------------------------------------------------

MESSY = {"nodes": [{"id": "c", "type": "cascade", "config": {"small_threshold": 2}},
                   {"id": "r", "type": "route", "config": {"branches": [{"name": "else"}], "colour": "red"}},
                   {"id": "x", "type": "nope"}, {"id": "s", "type": "summarise", "config": {}}],
         "edges": [{"source": "c", "target": "r", "source_port": "decided"}, {"source": "r", "target": "ghost"},
                   {"source": "c", "target": "c", "source_port": "decided"}, {"source": "s", "target": "c"}]}
# A route that needs a label nobody adds: "… Add a Classify or Cascade node upstream." (a nested `or`).
NEEDY = {"nodes": [{"id": "in", "type": "source.upload"}, {"id": "t", "type": "sink.table"},
                   {"id": "r", "type": "route", "config": {"branches": [{"name": "a", "labels": ["x"]}]}}],
         "edges": [{"source": "in", "target": "r"}, {"source": "r", "source_port": "a", "target": "t"}]}


def test_every_problem_keeps_its_msgid_and_parameters_and_rebuilds_its_english_message():
    problems = validate(parse_graph(MESSY)) + validate(parse_graph(NEEDY))
    assert {p.code for p in problems} >= {"missing_config", "invalid_config", "unknown_config", "unknown_type",
                                          "dangling_edge", "cycle", "no_source", "no_sink", "missing_field"}
    for problem in problems:
        data = problem.to_json()
        assert isinstance(problem.message, Text) and data["msgid"], problem
        with translation.override("en"):
            assert texts.problem_json(data)["text"] == data["message"] == str(problem.message)
        assert json.loads(json.dumps(data)) == data  # what a version stores in its JSON column


def test_the_catalogue_marks_every_title_label_and_help_for_translation():
    for node_type in CATALOG.values():
        assert isinstance(node_type.title, Text) and isinstance(node_type.description, Text), node_type.type
        for spec in node_type.config:
            assert isinstance(spec.label, Text), (node_type.type, spec.name)
            assert not spec.help or isinstance(spec.help, Text), (node_type.type, spec.name)
    assert all(isinstance(title, Text) for title in GROUPS.values())


def test_the_gallery_lists_every_text_of_its_templates_for_makemessages():
    from workflows.design.gallery.texts import MSGIDS

    wanted = set()
    for template in gallery.templates():
        wanted |= {template["name"], template["description"]}
        wanted |= {n["label"] for n in template["graph"]["nodes"] if n.get("label")}
    assert wanted - MSGIDS == set(), "add these to workflows/design/gallery/texts.py"


# --- 2. a catalogue of our own: pages and API errors in the reader's language ----------------------

FAKE = {
    "Sources": "[it] Sorgenti",
    "No such workflow.": "[it] Nessun workflow così.",
    "The workflow is empty: add a source, at least one step and a sink.": "[it] Il workflow è vuoto.",
    "Node '%(node)s': set '%(field)s'.": "[it] Nodo '%(node)s': imposta '%(field)s'.",
    "Small model": "[it] Modello piccolo",
    "Your role does not allow this (%(capability)s).": "[it] Il tuo ruolo non lo consente (%(capability)s).",
    "Pick two existing versions to compare.": "[it] Scegli due versioni esistenti da confrontare.",
    "run status\x04queued": "[it] in coda",
}


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU .mo file (the format msgfmt writes), so the test needs no gettext tools."""
    header = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
    entries = sorted((k.encode(), v.encode()) for k, v in {"": header, **messages}.items())
    ids = strs = b""
    offsets = []
    for key, value in entries:
        offsets.append((len(ids), len(key), len(strs), len(value)))
        ids += key + b"\0"
        strs += value + b"\0"
    keys_at = 7 * 4 + 16 * len(entries)
    values_at = keys_at + len(ids)
    table = array("i")
    for id_at, id_len, _, _ in offsets:
        table += array("i", [id_len, id_at + keys_at])
    for _, _, str_at, str_len in offsets:
        table += array("i", [str_len, str_at + values_at])
    head = struct.pack("Iiiiiii", 0x950412DE, 0, len(entries), 7 * 4, 7 * 4 + 8 * len(entries), 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + table.tobytes() + ids + strs)


@pytest.fixture
def fake_italian(settings, tmp_path):
    # Changing LOCALE_PATHS empties Django's translation caches (django.test.signals), before and after.
    write_mo(tmp_path / "it" / "LC_MESSAGES" / "django.mo", FAKE)
    settings.LOCALE_PATHS = [tmp_path]
    return FAKE


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_api_errors_answer_in_the_callers_language(fake_italian, personas):
    client = _client(personas["designer"])
    missing = client.get("/api/workflows/999999/", HTTP_ACCEPT_LANGUAGE="it")
    assert missing.status_code == 404 and missing.json()["detail"] == "[it] Nessun workflow così."
    assert client.get("/api/workflows/999999/", HTTP_ACCEPT_LANGUAGE="en").json()["detail"] == "No such workflow."

    refused = _client(personas["operator"]).post("/api/workflows/", {"name": "x"}, content_type="application/json",
                                                 HTTP_ACCEPT_LANGUAGE="it")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "[it] Il tuo ruolo non lo consente (workflow.edit)."


@pytest.mark.django_db
def test_validation_problems_are_translated_where_they_are_shown_parameters_included(fake_italian, personas):
    client = _client(personas["designer"])
    graph = {"nodes": [{"id": "c", "type": "cascade", "config": {}}], "edges": []}
    answer = client.post("/api/workflows/validate/", {"graph": graph}, content_type="application/json",
                         HTTP_ACCEPT_LANGUAGE="it").json()
    missing = next(p for p in answer["problems"] if p["code"] == "missing_config" and p["field"] == "model")
    # The field's label is a translated text inside the translated sentence; `message` stays English.
    assert missing["text"] == "[it] Nodo 'c': imposta '[it] Modello piccolo'."
    assert missing["message"] == "Node 'c': set 'Small model'."
    empty = client.post("/api/workflows/validate/", {"graph": {"nodes": [], "edges": []}},
                        content_type="application/json", HTTP_ACCEPT_LANGUAGE="it").json()
    assert empty["problems"][0]["text"] == "[it] Il workflow è vuoto."


@pytest.mark.django_db
def test_pages_answer_in_the_readers_language(fake_italian, personas):
    workflow = make_workflow(personas["designer"])
    client = _client(personas["designer"])
    canvas = client.get(f"/workflows/{workflow.pk}/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "[it] Sorgenti" in canvas  # the palette's group, made in graph/catalog.py, translated by the view
    assert "[it] Sorgenti" not in client.get(f"/workflows/{workflow.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    diff = client.get(f"/workflows/{workflow.pk}/diff/?from=1&to=99", HTTP_ACCEPT_LANGUAGE="it")
    assert diff.status_code == 400 and diff.content.decode() == "[it] Scegli due versioni esistenti da confrontare."
    with translation.override("it"):
        assert texts.status_label("queued") == "[it] in coda" and texts.status_label("done", "item") == "done"


# --- 3. the project's own catalogue, once compiled -------------------------------------------------

@pytest.mark.skipif(not REAL_MO.exists(), reason="locale/it/LC_MESSAGES/django.mo is made by `make translations` "
                                                 "and compilemessages; until then there is no Italian to check")
@pytest.mark.django_db
def test_the_italian_catalogue_answers_a_page_and_an_api_error(personas):
    with translation.override("it"):
        sources, no_such = translation.gettext("Sources"), translation.gettext("No such workflow.")
        empty = translation.gettext("The workflow is empty: add a source, at least one step and a sink.")
    assert "Sources" != sources and no_such != "No such workflow.", "the catalogue lacks these translations"
    workflow = make_workflow(personas["designer"])
    client = _client(personas["designer"])
    assert sources in client.get(f"/workflows/{workflow.pk}/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert client.get("/api/workflows/999999/", HTTP_ACCEPT_LANGUAGE="it").json()["detail"] == no_such
    answer = client.post("/api/workflows/validate/", {"graph": {"nodes": [], "edges": []}},
                         content_type="application/json", HTTP_ACCEPT_LANGUAGE="it").json()
    assert answer["problems"][0]["text"] == empty
