"""The executor's model-node handlers on real packaged models (prepare once, process micro-batches)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from workflows.design.references import resolve_models
from workflows.engine.nodes.base import RunContext, handler_for
from workflows.engine.state import ItemState
from workflows.graph import parse_graph, plan
from workflows.runtimes.sessions import ArtifactError

pytestmark = pytest.mark.django_db
TICKETS = [json.loads(line)
           for line in (Path(__file__).resolve().parents[1] / "data" / "tickets_en_it.jsonl").read_text().splitlines()
           if line.strip()]
TRIAGE_LABELS = {
    "billing": "invoices, payments, refunds, charges and bank transfers",
    "technical": "the product or app does not work: errors, bugs, crashes, outages",
    "account": "login, password, profile and account access",
}


def step_for(node_type: str, **config):
    graph = parse_graph({"nodes": [{"id": "src", "type": "source.upload", "config": {"fields": ["text", "file"]}},
                                   {"id": "n", "type": node_type, "config": config},
                                   {"id": "out", "type": "sink.table"}],
                         "edges": [{"source": "src", "source_port": "out", "target": "n", "target_port": "in"},
                                   {"source": "n", "source_port": "out" if node_type != "cascade" else "decided",
                                    "target": "out", "target_port": "in"}]})
    return plan(graph).step("n"), RunContext(run_id=1, workflow_id=1, models=resolve_models(graph))


def run(node_type: str, items: list[dict], **config):
    step, context = step_for(node_type, **config)
    handler = handler_for(node_type)()
    handler.prepare(step, context)
    return handler.process([ItemState(item_id=i + 1, seq=i, data=dict(item)) for i, item in enumerate(items)], step)


def test_zero_shot_classifies_english_and_italian_tickets(packaged_models):
    out = run("classify", [{"text": "Non riesco ad accedere: la password non funziona più"},
                           {"text": "I was charged twice on my last invoice, please refund"},
                           {"text": "The app crashes with error 500 since this morning"}],
              model="minilm@production", method="zero_shot", labels=TRIAGE_LABELS)
    assert [o.label for o in out] == ["account", "billing", "technical"]
    assert all(0.5 < o.confidence <= 1 and o.model_ref == "minilm:v2" for o in out)
    assert set(out[0].fields["scores"]) == set(TRIAGE_LABELS)


def test_trained_head_with_its_shadow_recorded_never_routed(packaged_models):
    from workflows.models.registry import set_initial_alias

    set_initial_alias(packaged_models["bbc-tfidf"], "shadow")
    step, context = step_for("classify", model="news-topics@production", shadow=True)
    assert "news-topics@shadow" in context.models
    handler = handler_for("classify")()
    handler.prepare(step, context)
    out = handler.process([ItemState(1, 0, {"text": "The striker scored twice as United won the cup final."})], step)[0]
    assert out.label == "sport" and out.model_ref == "news-topics:v1" and out.port == "out"
    assert out.fields["shadow"]["model_ref"] == "news-topics:v2" and out.fields["shadow"]["label"] == "sport"
    assert out.stats["shadow_agree"] == 1.0


def test_extract_with_the_ner_model_and_patterns(packaged_models):
    italian = next(t for t in TICKETS if t.get("lang") == "it" or "IBAN" in t["text"])
    out = run("extract", [italian], patterns=["email", "phone", "iban", "vat", "amount", "date"],
              entities=["person"])[0]
    assert not out.error, out.error
    fields = out.fields["fields"]
    assert fields["iban"] and fields["email"] and fields["person"], fields
    assert out.model_ref == "rampart:v1"


def test_extract_by_patterns_alone_needs_no_model(db):
    out = run("extract", [{"text": "Scrivete a info@example.it entro il 12/03/2025"}], patterns=["email", "date"],
              entities=[])[0]
    assert out.model_ref == "patterns" and out.fields["fields"]["email"][0]["value"] == "info@example.it"


def test_summary_sentences_come_from_the_text(packaged_models):
    text = ("The invoice for March was sent twice. The customer paid the first one on time. "
            "Our billing system then charged the card again. The customer now asks for a refund of the second charge. "
            "Support confirmed the duplicate and opened a refund request.")
    out = run("summarise", [{"text": text}], model="minilm@production", sentences=2)[0]
    sentences = out.fields["summary_sentences"]
    assert len(sentences) == 2 and all(text[s["start"]:s["end"]] == s["text"] for s in sentences)
    assert out.fields["summary"] == " ".join(s["text"] for s in sentences)


def test_cascade_sends_the_unsure_to_review(packaged_models):
    items = [{"text": "I was charged twice on my invoice"}, {"text": "hello"}]
    strict = run("cascade", items, model="minilm@production", labels=TRIAGE_LABELS, small_threshold=0.999999)
    assert [o.port for o in strict] == ["review", "review"] and all(o.fields["decided_by"] == "human" for o in strict)
    lenient = run("cascade", items, model="minilm@production", labels=TRIAGE_LABELS, small_threshold=0.01)
    assert [o.port for o in lenient] == ["decided", "decided"] and lenient[0].label == "billing"


def test_empty_and_huge_texts_are_per_item_results(packaged_models):
    out = run("classify", [{"text": ""}, {"text": "word " * 250_000}, {"text": "refund please"}],
              model="minilm@production", method="zero_shot", labels=TRIAGE_LABELS)
    assert out[0].error and out[0].error_code == "empty_text"
    assert not out[1].error and out[1].fields.get("warnings")  # a 1 MB text is truncated, with a warning
    assert out[2].label == "billing"


def test_ocr_reads_a_scanned_line(packaged_models):
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 90), "white")
    ImageDraw.Draw(image).text((20, 20), "Fattura 118 del 12 marzo 2025", fill="black",
                               font=ImageFont.load_default(size=34))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    out = run("ocr", [{"file": base64.b64encode(buffer.getvalue()).decode()}, {"file": "not base64!"}],
              model="ocr@production")
    assert "12 marzo 2025" in out[0].fields["text"] and out[0].confidence > 0.8
    assert out[1].error_code == "no_image"


@pytest.mark.parametrize("damage", ["missing", "tampered"])
def test_a_missing_or_tampered_artifact_is_a_clear_error(db, tmp_path, damage):
    from workflows.models.registry import register_version, set_initial_alias

    path = tmp_path / "model.onnx"
    if damage == "tampered":
        path.write_bytes(b"not the bytes that were registered")
    version, _ = register_version(model_name="ghost", kind="classifier", source="imported", runtime="tfidf",
                                  meta={"path": str(path), "sha256": "f" * 64, "size": 10, "labels": ["a", "b"]})
    set_initial_alias(version, "production")
    with pytest.raises(ArtifactError) as exc:
        run("classify", [{"text": "x"}], model="ghost@production")
    assert str(path) in str(exc.value) or "sha256" in str(exc.value)
