"""The gallery speaks Italian: each template has an Italian variant (Italian label keys and descriptions,
texts, the multilingual models) that an Italian reader gets from the gallery and from load_templates,
while an English reader still gets the English template. The Italian Ticket triage runs the Italian
sample tickets on the real models: most labels right, every name, IBAN and address found."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from tests.engine.helpers import drain
from workflows.design import gallery
from workflows.design.versions import create_workflow
from workflows.graph import parse_graph, validate
from workflows.models import Decision, ReviewTask, Workflow
from workflows.runtimes.language import detect

E5 = "e5-multilingual@production"
MINILM = "minilm@production"
TRIAGE_IT = {"fatturazione", "tecnico", "accesso", "spedizione", "altro"}


def node_of(template: dict, node_id: str) -> dict:
    return next(n for n in template["graph"]["nodes"] if n["id"] == node_id)


# --- the variants themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("slug", [t["slug"] for t in gallery.templates()])
def test_every_template_has_a_complete_italian_variant_on_the_multilingual_models(slug):
    english, italian = (gallery.in_language(gallery.get(slug), code) for code in ("en", "it"))
    assert italian["language"] == "it" and english["language"] == "en" and italian["languages"] == ["en", "it"]
    assert validate(parse_graph(italian["graph"])) == []
    assert italian["name"] != english["name"] and italian["description"] != english["description"]
    # Same workflow: the same nodes and edges, every node labelled in Italian.
    assert [(n["id"], n["type"]) for n in italian["graph"]["nodes"]] == [(n["id"], n["type"])
                                                                         for n in english["graph"]["nodes"]]
    assert italian["graph"]["edges"] == english["graph"]["edges"]
    for mine, theirs in zip(italian["graph"]["nodes"], english["graph"]["nodes"], strict=True):
        assert mine["label"] and mine["label"] != theirs["label"], mine
    for node in italian["graph"]["nodes"]:
        if node["type"] in ("classify", "summarise", "embed"):
            assert node["config"]["model"] == E5, (slug, node["id"])
        if node["type"] == "classify":
            assert set(node["config"]["labels"]) != set(node_of(english, node["id"])["config"]["labels"]), node
        if node["type"] == "llm":  # the local model reads and writes English only: its instructions stay English
            assert node["config"]["endpoint"] == "local-smollm2"
            assert detect(node["config"]["prompt"]).languages == ("en",), node["config"]["prompt"]
    # The English template keeps MiniLM: e5 did no better on the English samples (gallery/__init__.py).
    assert all(n["config"]["model"] == MINILM for n in english["graph"]["nodes"]
               if n["type"] in ("classify", "summarise", "embed"))


@pytest.mark.parametrize("slug", [t["slug"] for t in gallery.templates()])
@pytest.mark.parametrize("language", ["en", "it"])
def test_routes_reviews_and_prompts_name_only_labels_their_classifier_gives(slug, language):
    template = gallery.in_language(gallery.get(slug), language)
    given = {label for n in template["graph"]["nodes"] if n["type"] == "classify" for label in n["config"]["labels"]}
    for node in template["graph"]["nodes"]:
        # Without a classifier the reviewer's labels are the line's own decisions (register or contest an
        # invoice), and a route on another field than the label branches on that field's values.
        named = set(node["config"].get("labels") or []) if node["type"] == "review" and given else set()
        if node["config"].get("label_field", "label") == "label":
            named |= {label for branch in node["config"].get("branches") or [] for label in branch.get("labels") or []}
        assert named <= given, (slug, language, node["id"], named - given)
        if node["type"] == "llm" and node["id"] == "llm":  # the triage question offers the reviewer's labels
            assert all(re.search(rf"\b{label}\b", node["config"]["prompt"]) for label in given), node


def test_the_italian_triage_labels_and_extractions():
    italian = gallery.in_language(gallery.get("ticket-triage"), "it")
    assert set(node_of(italian, "classify")["config"]["labels"]) == TRIAGE_IT
    assert set(node_of(italian, "review")["config"]["labels"]) == TRIAGE_IT
    for language in ("en", "it"):
        extract = node_of(gallery.in_language(gallery.get("ticket-triage"), language), "extract")["config"]
        assert {"person", "address"} <= set(extract["entities"]) and {"iban", "vat"} <= set(extract["patterns"])


def test_a_variant_naming_a_node_the_graph_lacks_is_refused():
    template = {**gallery.get("ticket-triage"), "slug": "ticket-triage"}
    template["variants"] = {"it": {"name": "Prova", "nodes": {"nessuno": {"label": "Nodo fantasma"}}}}
    with pytest.raises(KeyError, match="nessuno"):
        gallery.in_language(template, "it")


def test_a_variant_replaces_a_config_key_whole_and_keeps_the_others():
    template = gallery.get("ticket-triage")
    classify = node_of(gallery.in_language(template, "it-IT"), "classify")["config"]
    assert set(classify["labels"]) == TRIAGE_IT  # not merged with the English keys
    assert classify["method"] == "zero_shot"  # kept from the English graph


def test_an_english_reader_gets_the_english_template_and_an_italian_one_the_variant():
    template = gallery.get("ticket-triage")
    with translation.override("en"):
        assert gallery.in_language(template)["name"] == "Ticket triage"
    with translation.override("it"):
        assert gallery.in_language(template)["name"] == "Smistamento ticket"
    assert "variants" not in gallery.in_language(template, "it")


def test_sample_documents_of_one_language():
    italian = gallery.sample_items("ticket-triage", "it")
    assert len(italian) >= 8 and {item["language"] for item in italian} == {"it"}
    every = gallery.sample_items("ticket-triage")
    assert len(every) == len(italian) + len(gallery.sample_items("ticket-triage", "en"))


# --- the gallery page and load_templates ---------------------------------------------------------------


def signed_in(user, accept_language: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=accept_language)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_gallery_shows_an_italian_reader_the_italian_templates_and_links_the_english_ones(personas):
    html = signed_in(personas["designer"], "it-IT,it;q=0.9").get("/templates/").content.decode()
    assert "Smistamento ticket" in html and "Revisione contratti" in html and "Ticket triage" not in html
    assert "Ticket in arrivo" in html  # the steps are the variant's node labels
    assert 'href="?language=en"' in html and html.count('name="language" value="it"') == len(gallery.templates())
    english = signed_in(personas["designer"], "it").get("/templates/?language=en").content.decode()
    assert "Ticket triage" in english and "Smistamento ticket" not in english
    assert 'href="?language=it"' in english and english.count('name="language" value="en"') == len(gallery.templates())


@pytest.mark.django_db
def test_an_english_reader_sees_and_gets_the_english_template(personas):
    client = signed_in(personas["designer"], "en")
    html = client.get("/templates/").content.decode()
    assert "Ticket triage" in html and "Smistamento ticket" not in html and 'href="?language=it"' in html
    client.post("/templates/ticket-triage/use/")
    workflow = Workflow.objects.get(template="ticket-triage")
    assert workflow.name == "Ticket triage"
    assert workflow.latest.as_graph() == parse_graph(gallery.get("ticket-triage")["graph"])


@pytest.mark.django_db
def test_an_italian_reader_gets_the_italian_template_unless_the_form_asks_for_english(personas):
    client = signed_in(personas["designer"], "it")
    response = client.post("/templates/ticket-triage/use/")
    workflow = Workflow.objects.get(template="ticket-triage")
    assert response.status_code == 302 and response["Location"] == f"/workflows/{workflow.pk}/"
    assert workflow.name == "Smistamento ticket"
    italian = gallery.in_language(gallery.get("ticket-triage"), "it")
    assert workflow.latest.as_graph() == parse_graph(italian["graph"])
    assert workflow.latest.message == "From template ticket-triage (it)"

    client.post("/templates/contract-review/use/", {"language": "en"})
    assert Workflow.objects.get(template="contract-review").name == "Contract review"
    client.post("/templates/help-desk-answers/use/", {"language": "xx"})  # no such language: the reader's
    assert Workflow.objects.get(template="help-desk-answers").name == "Risposte dell'assistenza"


@pytest.mark.django_db
def test_load_templates_loads_the_language_asked_for_once(capsys):
    call_command("load_templates", "--language", "it")
    assert set(Workflow.objects.values_list("name", flat=True)) == {
        gallery.in_language(t, "it")["name"] for t in gallery.templates()}
    triage = Workflow.objects.get(template="ticket-triage").latest.as_graph()
    assert next(n for n in triage.nodes if n.id == "classify").config["model"] == E5
    call_command("load_templates")  # the site's language (English); each template is already there
    assert Workflow.objects.count() == len(gallery.templates())
    assert capsys.readouterr().out.count("exists") == len(gallery.templates())


@pytest.mark.django_db
def test_load_templates_defaults_to_the_sites_language():
    call_command("load_templates")
    assert Workflow.objects.get(template="ticket-triage").name == "Ticket triage"


# --- the Italian triage on the real models ---------------------------------------------------------------

# What a person would label each Italian sample ticket, and every name, IBAN and address in it.
EXPECTED = {
    "Rimborso fattura": ("fatturazione", ["Mario Rossi"], ["IT60X0542811101000000123456"], []),
    "Errore nell'app": ("tecnico", [], [], []),
    "Accesso bloccato": ("accesso", [], [], []),
    "Cambio intestazione": ("fatturazione", [], [], []),
    "Domanda generica": ("altro", [], [], []),
    "Pagamento non registrato": ("fatturazione", [], [], []),
    "Pacco non consegnato": ("spedizione", ["Giulia Esposito"], [], ["Via Giuseppe Verdi 21, 80133 Napoli"]),
    "Richiesta di reso": ("spedizione", ["Luca Ferrari"], [], ["Corso Vittorio Emanuele II 45, 10128 Torino"]),
    "Indirizzo di consegna sbagliato": ("spedizione", ["Anna Colombo"], [],
                                        ["Piazza Duomo 3, 20122 Milano", "Via Nazionale 88, 00184 Roma"]),
    "Doppio addebito": ("fatturazione", ["Francesca Romano"], ["IT21X0306909606000000123456"],
                        ["Via dei Mille 10, 40121 Bologna"]),
    "Codice di verifica non arriva": ("accesso", ["Marco Bruno"], [], []),
    "Sincronizzazione interrotta": ("tecnico", [], [], []),
    "Il sito non si apre": ("tecnico", [], [], []),
    "Nota di credito": ("fatturazione", ["Roberto Marino"], ["IT51N0200801600000105678901"], []),
    "Visita in sede": ("altro", ["Paolo Greco"], [], ["Viale Europa 7, 50126 Firenze"]),
    "Nuova utente": ("accesso", ["Sara Ricci"], [], []),
}


def triage_run(user, model: str):
    """The Italian Ticket triage (its classifier on `model`) over the Italian sample tickets, through
    the executor. No large model is started: the local one writes English only, so no Italian ticket
    may reach it (one that tried would fail to connect and end in the dead letters)."""
    from workflows.engine.launch import append_to_live_run, close_live_run

    template = gallery.in_language(gallery.get("ticket-triage"), "it")
    node_of(template, "classify")["config"]["model"] = model
    workflow, version = create_workflow(name=template["name"], description="", graph=parse_graph(template["graph"]),
                                        user=user, message="test", template="ticket-triage")
    assert version.is_runnable, version.problems
    run, _ = append_to_live_run(workflow, gallery.sample_items("ticket-triage", "it"), user=user)
    close_live_run(run)
    drain()
    run.refresh_from_db()
    return run


def accuracy(run) -> tuple[int, dict[str, str]]:
    labels = dict(Decision.objects.filter(run=run, node="classify").values_list("item__payload__subject", "label"))
    assert set(labels) == set(EXPECTED)
    return sum(labels[s] == want[0] for s, want in EXPECTED.items()), labels


@pytest.mark.slow
@pytest.mark.django_db
def test_the_italian_triage_gets_most_italian_tickets_right_and_finds_every_name_iban_and_address(
        packaged_models, personas):
    from workflows.governance.review import decide

    assert set(EXPECTED) == {item["subject"] for item in gallery.sample_items("ticket-triage", "it")}
    run = triage_run(personas["operator"], E5)
    assert run.items_dead == 0, list(run.dead_letters.values_list("node", "reason"))
    right, labels = accuracy(run)
    # Measured: 14 of 16 (0.875) with e5; MiniLM on the same Italian labels gets 9 of 16 (below).
    assert right >= 12, labels
    assert Decision.objects.filter(run=run, node="classify").first().model_ref.startswith("e5-multilingual:")
    # The unsure ones wait for a person, never for the English-only large model; the person's label
    # sends each through the same extraction and summary.
    held = Decision.objects.filter(run=run, node="llm")
    assert all(d.port == "parked" and d.output["llm_skipped"]["language"] == "it" for d in held)
    for task in ReviewTask.objects.filter(run=run, status="open"):
        decide(task, user=personas["operator"], label=EXPECTED[task.item.payload["subject"]][0])
    drain()
    run.refresh_from_db()
    assert run.items_done == run.items_total == len(EXPECTED) and run.status == "succeeded"
    assert Decision.objects.filter(run=run, node="summarise").count() == len(EXPECTED)

    for decision in Decision.objects.filter(run=run, node="extract"):
        _, names, ibans, addresses = EXPECTED[decision.item.payload["subject"]]
        fields = decision.output["fields"]
        found_names = {span["value"] for span in fields.get("person", [])}
        assert set(names) <= found_names, (decision.item.payload["subject"], fields.get("person"))
        assert set(ibans) <= {span["normalized"] for span in fields.get("iban", [])}, fields.get("iban")
        found_addresses = [span["value"] for span in fields.get("address", [])]
        for address in addresses:
            assert any(address in text for text in found_addresses), (address, found_addresses)
        if "P.IVA" in decision.item.payload["text"]:
            assert fields["vat"], decision.item.payload["subject"]


@pytest.mark.slow
@pytest.mark.django_db
def test_minilm_does_worse_on_the_italian_triage_than_e5(packaged_models, personas):
    right, labels = accuracy(triage_run(personas["operator"], MINILM))
    assert right <= 10, labels  # measured 9 of 16: why the Italian variant uses e5
