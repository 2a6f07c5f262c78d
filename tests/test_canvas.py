"""The canvas page and its server-rendered parts: node panel, history, import upload, templates gallery."""

from __future__ import annotations

import json

import pytest
from django.http import QueryDict
from django.test import Client

from tests.builders import make_workflow, register_model, triage_graph
from workflows.design.config_forms import parse_config
from workflows.design.gallery import templates
from workflows.design.versions import save_version
from workflows.graph import CATALOG, parse_graph, validate
from workflows.models import LLMEndpoint, Workflow

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def boot(response) -> dict:
    html = response.content.decode()
    start = (html.index('<script id="canvas-boot" type="application/json">')
             + len('<script id="canvas-boot" type="application/json">'))
    return json.loads(html[start:html.index("</script>", start)])


def panel(client, wf, node="cls", type_="classify", config=None):
    return client.get(f"/workflows/{wf.pk}/panel/", {"node": node, "type": type_, "config": json.dumps(config or {})},
                      HTTP_HX_REQUEST="true")


# ---------------------------------------------------------------- canvas page


def test_designer_gets_an_editable_canvas_with_the_graph_and_named_ports(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["designer"]).get(f"/workflows/{wf.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="save"' in html and 'draggable="true"' in html and "js/canvas.js" in html
    data = boot(response)
    assert data["canEdit"] is True and data["version"] == 1
    assert [n["id"] for n in data["graph"]["nodes"]] == [n["id"] for n in triage_graph()["nodes"]]
    assert data["ports"]["route"] == {"inputs": ["in"], "outputs": ["confident", "else"]}
    assert data["ports"]["cls"]["outputs"] == list(CATALOG["classify"].output_ports({}))


def test_palette_groups_every_node_type_with_its_description(personas):
    html = client_for(personas["designer"]).get(
        f"/workflows/{make_workflow(personas['designer']).pk}/").content.decode()
    for title in ("Sources", "Models", "Routing", "Human review", "Large model", "Sinks"):
        assert f"<h3>{title}</h3>" in html
    for node_type in CATALOG.values():
        assert f'data-type="{node_type.type}"' in html
        assert node_type.description.replace("'", "&#x27;") in html


@pytest.mark.parametrize("role", ["operator", "trainer", "validator", "business_owner"])
def test_roles_that_may_not_edit_get_a_read_only_canvas(personas, role):
    wf = make_workflow(personas["designer"])
    response = client_for(personas[role]).get(f"/workflows/{wf.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "read-only" in html and 'id="save"' not in html and 'draggable="true"' not in html
    assert "data-restore" not in html
    assert boot(response)["canEdit"] is False


def test_the_history_partial_lists_versions_and_offers_restore_to_editors(personas):
    wf = make_workflow(personas["designer"])
    save_version(wf, parse_graph(triage_graph()), user=personas["admin"], parent=1, message="Tighter threshold")
    html = client_for(personas["designer"]).get(f"/workflows/{wf.pk}/history/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "Tighter threshold" in html and "admin" in html
    assert 'data-restore="1"' in html and 'data-restore="2"' not in html  # the latest is not restorable
    operator_html = client_for(personas["operator"]).get(f"/workflows/{wf.pk}/history/").content.decode()
    assert "Tighter threshold" in operator_html and "data-restore" not in operator_html


def test_outsiders_see_no_canvas(personas):
    wf = make_workflow(personas["designer"])
    assert client_for(personas["outsider"]).get(f"/workflows/{wf.pk}/").status_code == 404
    assert Client().get(f"/workflows/{wf.pk}/").status_code == 302


# ---------------------------------------------------------------- node panel


def test_panel_renders_the_schema_with_registry_models_and_the_validators_messages(personas):
    register_model("minilm", kind="embedder")
    register_model("tickets", kind="classifier")
    LLMEndpoint.objects.create(name="local-smollm2", base_url="http://127.0.0.1:8088/v1", model_name="smollm2",
                               location=LLMEndpoint.ON_PREMISE, region="local")
    wf = make_workflow(personas["designer"])
    html = panel(client_for(personas["designer"]), wf, config={}).content.decode()
    assert '<select id="cfg-model" name="cfg-model">' in html
    assert 'value="minilm@production"' in html and 'value="tickets@production"' in html
    assert "set &#x27;Model&#x27;" in html  # missing_config from workflows.graph.validate, inline
    assert 'name="cfg-method"' in html and 'value="zero_shot"' in html
    assert 'name="cfg-labels"' in html and "Apply" in html
    llm = panel(client_for(personas["designer"]), wf, node="llm", type_="llm",
                config={"endpoint": "local-smollm2"}).content.decode()
    assert 'value="local-smollm2" selected' in llm and "<textarea" in llm


def test_panel_shows_an_unregistered_reference_as_such(personas):
    register_model("minilm", kind="embedder")
    wf = make_workflow(personas["designer"])
    html = panel(client_for(personas["designer"]), wf, config={"model": "gone@production"}).content.decode()
    assert "gone@production (not registered)" in html
    assert "no registered model matches" in html


def test_panel_is_read_only_for_operators(personas):
    wf = make_workflow(personas["designer"])
    html = panel(client_for(personas["operator"]), wf, config={"model": "tickets@production"}).content.decode()
    assert "<fieldset disabled>" in html and "Apply" not in html and "Delete node" not in html


def test_applying_a_readable_config_tells_the_canvas(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["designer"]).post(f"/workflows/{wf.pk}/panel/", {
        "_node": "cls", "_type": "classify", "_label": "Topic", "cfg-model": "minilm@production",
        "cfg-method": "zero_shot", "cfg-labels": "billing: invoices and payments\ntecnico: errori e guasti",
        "cfg-input_field": "text", "cfg-retries": "3",
    }, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    event = json.loads(response["HX-Trigger"])["cfConfig"]
    assert event["node"] == "cls" and event["label"] == "Topic"
    assert event["config"]["labels"] == {"billing": "invoices and payments", "tecnico": "errori e guasti"}
    assert event["config"]["retries"] == 3 and event["config"]["method"] == "zero_shot"
    assert event["outputs"] == ["out", "error"]


def test_route_branches_come_back_as_output_ports(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["designer"]).post(f"/workflows/{wf.pk}/panel/", {
        "_node": "route", "_type": "route",
        "cfg-branches-0-name": "sure", "cfg-branches-0-labels": "", "cfg-branches-0-min_confidence": "0,8",
        "cfg-branches-0-max_confidence": "",
        "cfg-branches-1-name": "billing", "cfg-branches-1-labels": "billing, payments",
        "cfg-branches-1-min_confidence": "", "cfg-branches-1-max_confidence": "",
        "cfg-branches-2-name": "", "cfg-branches-2-labels": "", "cfg-branches-2-min_confidence": "",
        "cfg-branches-2-max_confidence": "",
    })
    event = json.loads(response["HX-Trigger"])["cfConfig"]
    assert event["config"]["branches"] == [{"name": "sure", "min_confidence": 0.8},
                                           {"name": "billing", "labels": ["billing", "payments"]}]
    assert event["outputs"] == ["sure", "billing", "else"]


def test_unreadable_values_are_shown_inline_and_not_applied(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["designer"]).post(f"/workflows/{wf.pk}/panel/", {
        "_node": "llm", "_type": "llm", "cfg-endpoint": "local-smollm2", "cfg-prompt": "{text}",
        "cfg-max_tokens": "lots",
    })
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert "Enter a whole number." in html and 'value="lots"' in html  # shown back as typed


def test_readable_but_wrong_values_are_applied_and_marked(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["designer"]).post(f"/workflows/{wf.pk}/panel/", {
        "_node": "llm", "_type": "llm", "cfg-endpoint": "local-smollm2", "cfg-prompt": "{text}", "cfg-temperature": "7",
    })
    assert "must be at most 2" in response.content.decode()
    assert json.loads(response["HX-Trigger"])["cfConfig"]["config"]["temperature"] == 7.0


def test_operators_cannot_post_the_panel(personas):
    wf = make_workflow(personas["designer"])
    response = client_for(personas["operator"]).post(f"/workflows/{wf.pk}/panel/",
                                                     {"_node": "cls", "_type": "classify"})
    assert response.status_code == 403


def test_panel_for_an_unknown_type_says_so(personas):
    wf = make_workflow(personas["designer"])
    html = panel(client_for(personas["designer"]), wf, type_="teleport").content.decode()
    assert "unknown type" in html


def test_parse_config_reads_every_kind():
    data = QueryDict(mutable=True)
    data.update({"cfg-fields": "text, subject\nchannel", "cfg-cron": " 0 7 * * 1-5 ", "cfg-dataset": "tickets"})
    config, errors = parse_config(CATALOG["source.schedule"], data)
    assert errors == {} and config == {"fields": ["text", "subject", "channel"], "cron": "0 7 * * 1-5",
                                       "dataset": "tickets"}
    data = QueryDict(mutable=True)
    data.setlist("cfg-patterns", ["iban", "vat", "bogus"])
    config, _ = parse_config(CATALOG["extract"], data)
    assert config["patterns"] == ["iban", "vat"] and config["entities"] == []
    config, _ = parse_config(CATALOG["llm"], QueryDict("cfg-redact=on&cfg-prompt=Hi%20%7Btext%7D%0A"))
    assert config["redact"] is True and config["prompt"] == "Hi {text}\n"
    config, errors = parse_config(CATALOG["classify"], QueryDict("cfg-labels=billing%3A%20x%0Anot%20a%20pair"))
    assert "Line 2" in errors["labels"]


# ---------------------------------------------------------------- import upload


def _export_document(graph=None) -> str:
    return json.dumps({"format": "cognitive-factory/workflow", "format_version": 1, "name": "Imported triage",
                       "description": "", "graph": graph or triage_graph()})


def test_upload_creates_a_workflow_from_an_export_file(personas):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(personas["designer"])
    upload = SimpleUploadedFile("triage.json", _export_document().encode(), content_type="application/json")
    response = client.post("/workflows/import/", {"file": upload, "name": ""})
    workflow = Workflow.objects.get(name="Imported triage")
    assert response.status_code == 302 and response["Location"] == f"/workflows/{workflow.pk}/"
    assert workflow.latest.graph["nodes"][0]["id"] == "src"


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "The file is not JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"format": "something-else", "format_version": 1, "name": "x", "graph": {}}', "format"),
    (_export_document({"nodes": [{"id": "a", "type": "teleport"}], "edges": []}), "unknown type 'teleport'"),
    ("", "Choose an exported workflow file"),
])
def test_upload_refuses_bad_files_and_says_why(personas, document, message):
    response = client_for(personas["designer"]).post("/workflows/import/", {"document": document})
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Workflow.objects.exists()


# ---------------------------------------------------------------- templates gallery


def test_there_are_five_templates_and_each_validates_without_problems():
    found = {t["slug"]: t for t in templates()}
    assert set(found) == {"ticket-triage", "contract-review", "catalogue-enrichment", "help-desk-answers",
                          "fatture-passive"}
    for slug, template in found.items():
        graph = parse_graph(template["graph"])
        assert validate(graph) == [], (slug, validate(graph))
        types = {n.type for n in graph.nodes}
        classify = [n for n in graph.nodes if n.type == "classify"]
        assert all(n.config["method"] == "zero_shot" and n.config["model"] == "minilm@production"
                   for n in classify), slug
        assert all(n.config["endpoint"] == "local-smollm2" for n in graph.nodes if n.type == "llm"), slug
        assert all(n.config["model"] == "rampart@production" for n in graph.nodes if n.type == "extract"), slug
        assert any(t.startswith("sink.") for t in types), slug


def test_templates_cover_their_use_cases():
    found = {t["slug"]: {n["type"] for n in t["graph"]["nodes"]} for t in templates()}
    assert {"classify", "route", "extract", "summarise", "llm", "review"} <= found["ticket-triage"]
    assert {"extract", "summarise", "classify", "route", "review"} <= found["contract-review"]
    assert {"classify", "extract", "summarise"} <= found["catalogue-enrichment"]
    assert {"classify", "embed", "llm", "review"} <= found["help-desk-answers"]
    assert {"extract", "route", "review", "sink.export"} <= found["fatture-passive"]


def test_gallery_lists_templates_and_offers_them_to_designers_only(personas):
    html = client_for(personas["designer"]).get("/templates/").content.decode()
    for template in templates():
        assert template["name"] in html
    assert html.count(">Use template</button>") == len(templates())
    operator_html = client_for(personas["operator"]).get("/templates/").content.decode()
    assert "Ticket triage" in operator_html and ">Use template</button>" not in operator_html
    assert client_for(personas["outsider"]).get("/templates/").status_code == 403


def test_use_template_creates_a_new_workflow_with_its_graph(personas):
    response = client_for(personas["designer"]).post("/templates/contract-review/use/")
    workflow = Workflow.objects.get(template="contract-review")
    assert response.status_code == 302 and response["Location"] == f"/workflows/{workflow.pk}/"
    template = next(t for t in templates() if t["slug"] == "contract-review")
    assert workflow.latest.as_graph() == parse_graph(template["graph"])
    assert workflow.created_by == personas["designer"]


def test_use_template_is_refused_to_viewers_and_unknown_slugs(personas):
    assert client_for(personas["operator"]).post("/templates/ticket-triage/use/").status_code == 403
    assert client_for(personas["designer"]).post("/templates/nope/use/").status_code == 404
    assert not Workflow.objects.exists()
