"""Every gallery template runs its sample documents end to end on the real models (and the real
local large model), through the executor: the demo a new user gets from `make run`."""

from __future__ import annotations

import pytest

from tests.engine.helpers import drain
from workflows.design import gallery
from workflows.design.versions import create_workflow
from workflows.graph import parse_graph
from workflows.models import Decision, LLMEndpoint, ReviewTask, Run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def factory_ready(packaged_models, local_llm):
    LLMEndpoint.objects.filter(name="local-smollm2").update(base_url=local_llm)
    return packaged_models


def start(slug: str, user, language: str = "en") -> Run:
    from workflows.engine.launch import append_to_live_run, close_live_run, create_run

    template = gallery.in_language(gallery.get(slug), language)
    workflow, version = create_workflow(name=template["name"], description="", graph=parse_graph(template["graph"]),
                                        user=user, message="test", template=slug)
    assert version.is_runnable, version.problems
    items = gallery.sample_items(slug)
    if any(n.type == "source.rest" for n in version.as_graph().nodes):
        run, _ = append_to_live_run(workflow, items, user=user)
        close_live_run(run)
    else:
        run = create_run(workflow, user=user, items=items)
    drain()
    run.refresh_from_db()
    return run


# Each template in each of its languages, over all its samples (English and Italian), as the demo runs them.
@pytest.mark.parametrize(("slug", "language"), [(t["slug"], language) for t in gallery.templates()
                                                for language in gallery.languages(t)])
def test_template_runs_its_samples_end_to_end(factory_ready, personas, slug, language):
    run = start(slug, personas["operator"], language)
    items = gallery.sample_items(slug)
    assert run.items_total == len(items)
    assert run.items_dead == 0, list(run.dead_letters.values_list("node", "reason"))
    assert run.items_done + run.items_parked == len(items)
    # Every document has a decision at every node it reached, none twice.
    assert (Decision.objects.filter(run=run).values("item", "node").distinct().count()
            == Decision.objects.filter(run=run).count())
    assert not Decision.objects.filter(run=run).exclude(error="").exists()
    # Each model node ran on the model its variant names: e5 for Italian, MiniLM for English.
    family = {"en": "minilm:", "it": "e5-multilingual:"}[language]
    for node_type in ("classify", "summarise", "embed"):
        ids = [n["id"] for n in gallery.in_language(gallery.get(slug), language)["graph"]["nodes"]
               if n["type"] == node_type]
        refs = set(Decision.objects.filter(run=run, node__in=ids).values_list("model_ref", flat=True))
        assert all(ref.startswith(family) for ref in refs), (node_type, refs)


# What a person would label each English sample ticket.
ENGLISH_TICKETS = {
    "Double charge on invoice 4471": "billing", "App crashes on login": "technical",
    "Cannot reset password": "account", "Change billing address": "billing", "Sync is slow": "technical",
    "Two-factor codes": "account", "Parcel not delivered": "shipping", "Return a damaged monitor": "shipping",
    "Training for new staff": "other", "VAT number missing": "billing",
}


def test_ticket_triage_classifies_extracts_and_escalates(factory_ready, personas):
    run = start("ticket-triage", personas["operator"])
    labels = dict(Decision.objects.filter(run=run, node="classify").values_list("item__payload__subject", "label"))
    assert set(ENGLISH_TICKETS) == {item["subject"] for item in gallery.sample_items("ticket-triage", "en")}
    assert labels["Double charge on invoice 4471"] == "billing"
    assert labels["App crashes on login"] == "technical"
    # Measured: 8 of the 10 English tickets right (MiniLM; e5 got 6, so the English template keeps MiniLM).
    assert sum(labels[subject] == label for subject, label in ENGLISH_TICKETS.items()) >= 7, labels
    assert Decision.objects.filter(run=run, node="classify").first().model_ref == "minilm:v2"
    confident = Decision.objects.get(run=run, node="extract", item__payload__subject="Double charge on invoice 4471")
    assert confident.output["fields"]["iban"][0]["normalized"] == "GB82WEST12345698765432"
    # Uncertain tickets: the English ones asked the large model, the Italian ones went to a person without
    # it (the local model writes English only); each of them waits for a person once…
    asked = Decision.objects.filter(run=run, node="llm")
    assert asked.exists()
    for decision in asked:
        if decision.item.payload["language"] == "it":
            assert decision.port == "parked" and decision.output["llm_skipped"]["language"] == "it"
        else:
            assert decision.output["llm"]["tokens_out"] > 0 and decision.output["llm"]["location"] == "on_premise"
    tasks = ReviewTask.objects.filter(run=run, status="open", kind=ReviewTask.ESCALATION)
    assert tasks.count() == asked.count() == run.items_parked
    # …and the person's decision sends the ticket on through extraction and summary (an Italian ticket a
    # person decided at the large-model node is not asked about again at the triage review).
    from workflows.governance.review import decide

    reviewed = list(tasks.values_list("item_id", flat=True))
    for task in tasks:
        assert "suggested_label" in task.proposal or task.item.payload["language"] == "it"
        decide(task, user=personas["operator"], label="billing")
    drain()
    assert not ReviewTask.objects.filter(run=run, status="open", kind=ReviewTask.ESCALATION).exists()
    run.refresh_from_db()
    assert run.items_parked == 0 and run.items_done == run.items_total and run.status == "succeeded"
    for decision in Decision.objects.filter(run=run, node="extract", item_id__in=reviewed):
        if "€" in decision.item.payload["text"]:
            assert decision.output["fields"]["amount"], decision.output
    assert Decision.objects.filter(run=run, node="extract", item_id__in=reviewed).count() == len(reviewed)
    moved = Decision.objects.get(run=run, node="extract", item__payload__subject="Change billing address")
    assert [span["value"] for span in moved.output["fields"]["address"]] == ["Via Roma 12, 20121 Milano"]
    assert Decision.objects.filter(run=run, node="summarise").count() == run.items_total
