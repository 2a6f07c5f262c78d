"""The evidence pack: candidate vs production on labelled data, and a replay of recent documents.

A step's first classifier is compared with the step's zero-shot decision (the validator sees the
gain); any other first version with nothing, and the pack says so.

Metrics are computed by hand (no scikit-learn in the workers). Evaluation runs in micro-batches of
the executor's size, because dynamic int8 quantisation makes an output depend a little on its batch
companions: evidence must be measured the way production runs.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from workflows.design.texts import translate
from workflows.engine.nodes import loader
from workflows.governance.classifiers import node_config
from workflows.governance.labelsets import SEGMENT_KEYS, candidate_labels, check_evaluation_set, set_labels
from workflows.graph.text import Text, _
from workflows.models.registry import resolve
from workflows.models.runs import Decision

BATCH = getattr(settings, "ENGINE_BATCH_SIZE", 32)
REPLAY_ROWS = 100
TEXT_SHOWN = 160


def _note(text: Text) -> dict[str, Any]:
    """A note stored in the evidence: English under `note`, and what translating it takes under
    `note_text` (a worker computes the evidence; whoever reads it may read Italian)."""
    return {"note": str(text), "note_text": text.to_json()}


def for_display(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """The evidence with its notes in the reader's language (the page and the API show this)."""
    shown = dict(evidence or {})
    for key, part in shown.items():
        if isinstance(part, dict) and "note_text" in part:
            shown[key] = {**part, "note": translate(part["note_text"])}
    return shown


def classification_metrics(truth: list[str], predicted: list[str], labels: list[str] | None = None) -> dict[str, Any]:
    labels = labels or sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    per_class = {}
    f1s = []
    for label, i in index.items():
        tp = matrix[i][i]
        predicted_n = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                            "support": support}
        if support:
            f1s.append(f1)
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "n": len(truth),
        "accuracy": round(correct / len(truth), 4) if truth else None,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": matrix},
    }


def run_runtime(runtime: Any, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Outputs in order and the median milliseconds per item across micro-batches."""
    outputs: list[dict[str, Any]] = []
    per_item_ms = []
    for start in range(0, len(items), BATCH):
        batch = items[start:start + BATCH]
        began = time.perf_counter()
        outputs.extend(runtime.run(batch))
        per_item_ms.append((time.perf_counter() - began) * 1000 / len(batch))
    per_item_ms.sort()
    return outputs, round(per_item_ms[len(per_item_ms) // 2], 3) if per_item_ms else 0.0


def evaluate_runtime(runtime: Any, items: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    outputs, ms = run_runtime(runtime, [{"text": item["text"]} for item in items])
    predicted = [o.get("label", "∅ error") for o in outputs]
    truth = [item["label"] for item in items]
    result = classification_metrics(truth, predicted, labels)
    result["latency_ms_per_item"] = ms
    result["errors"] = sum(1 for o in outputs if o.get("error"))
    segments: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, item in enumerate(items):
        for key, value in (item.get("segment") or {}).items():
            segments[key][str(value)].append(i)
    result["by_segment"] = {
        key: {value: {k: v for k, v in classification_metrics([truth[i] for i in idx], [predicted[i] for i in idx],
                                                              labels).items()
                      if k in {"n", "accuracy", "macro_f1"}} for value, idx in values.items()}
        for key, values in segments.items()
    }
    result["predictions"] = predicted
    return result


def evaluate_classifier(version_id: int, items: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    return evaluate_runtime(loader.load(version_id), items, labels)


def compare_embedders(candidate_id: int, production_id: int, texts: list[str]) -> dict[str, Any]:
    import numpy as np

    a, ms_a = run_runtime(loader.load(candidate_id, purpose="embed"), [{"text": t} for t in texts])
    b, ms_b = run_runtime(loader.load(production_id, purpose="embed"), [{"text": t} for t in texts])
    cosines = [float(np.dot(x["embedding"], y["embedding"])) for x, y in zip(a, b, strict=True)
               if "embedding" in x and "embedding" in y]
    return {"n": len(cosines), "cosine_mean": round(float(np.mean(cosines)), 4) if cosines else None,
            "cosine_min": round(float(np.min(cosines)), 4) if cosines else None,
            "latency_ms_per_item": {"candidate": ms_a, "production": ms_b}}


def zero_shot_step(model: Any) -> tuple[Any, dict[str, Any]] | None:
    """(embedder version, step config) of the zero-shot step a classifier was made for, while that step
    still decides zero-shot (the classifier has no production version), else None."""
    if not (model.origin_workflow_id and model.origin_node) or model.alias("production") is not None:
        return None
    config = node_config(model.origin_workflow, model.origin_node)
    if not config or not config.get("model") or not config.get("labels"):
        return None
    try:
        return resolve(config["model"]), config
    except LookupError:
        return None


def baseline_of(version: Any) -> dict[str, Any]:
    """What the candidate is compared with: production; for a step's first classifier, the step's
    zero-shot decision today; for any other first version, nothing (and the pack says so)."""
    model = version.model
    production = model.alias("production")
    if production is not None and production.pk != version.pk:
        return {"kind": "production", "ref": production.ref, "version_id": production.pk}
    step = zero_shot_step(model) if model.kind == "classifier" else None
    if step is not None:
        embedder, config = step
        return {"kind": "zero_shot", "ref": embedder.ref, "version_id": embedder.pk,
                "workflow": model.origin_workflow_id, "workflow_name": model.origin_workflow.name,
                "node": model.origin_node, "labels": config["labels"]}
    if production is not None:
        return {"kind": "none", **_note(_("%(ref)s is production already: nothing to compare it with",
                                          ref=version.ref))}
    return {"kind": "none", **_note(_("%(ref)s is the first version of %(model)s: there is no production "
                                      "version to compare it with", ref=version.ref, model=model.name))}


def _baseline_runtime(baseline: dict[str, Any]) -> Any:
    if baseline["kind"] == "zero_shot":
        return loader.load(baseline["version_id"], purpose="zero_shot", labels=baseline["labels"])
    return loader.load(baseline["version_id"])


def classifier_evaluation(version: Any, labelled: Any, baseline: dict[str, Any]) -> dict[str, Any]:
    # Checked again here: the set may have been edited since the request was accepted.
    check_evaluation_set(version, labelled)
    labels = candidate_labels(version) or set_labels(labelled)
    candidate = evaluate_classifier(version.pk, labelled.items, labels)
    base = (evaluate_runtime(_baseline_runtime(baseline), labelled.items, labels)
            if baseline["kind"] != "none" else None)
    changed = []
    if base is not None:
        for i, (a, b) in enumerate(zip(candidate["predictions"], base["predictions"], strict=True)):
            if a != b:
                changed.append({"index": i, "truth": labelled.items[i]["label"], "candidate": a, "production": b,
                                "text": labelled.items[i]["text"][:TEXT_SHOWN]})
    for result in (candidate, base):
        if result is not None:
            result.pop("predictions")
    return {
        "labelled_set": labelled.name,
        "labels": labels,
        "labels_match": True,
        "candidate": candidate,
        "production": base,
        "delta": {k: round(candidate[k] - base[k], 4) for k in ("accuracy", "macro_f1")
                  if base and candidate[k] is not None and base[k] is not None} if base else None,
        "changed": changed[:50],
        "changed_count": len(changed),
        "segments_worse": segments_worse(candidate, base),
    }


def evidence_pack(request: Any) -> dict[str, Any]:
    """Everything a validator needs to decide, computed in the worker."""
    version = request.version
    model = version.model
    production = model.alias("production")
    baseline = baseline_of(version)
    pack: dict[str, Any] = {
        "generated_at": timezone.now().isoformat(),
        "candidate": {"ref": version.ref, "size": version.size, "source": version.source, "sha256": version.sha256},
        "production": ({"ref": production.ref, "size": production.size, "sha256": production.sha256}
                       if production else None),
        "baseline": {k: v for k, v in baseline.items() if k != "labels"},
        "batch_size": BATCH,
        "evaluation": None,
        "replay": None,
    }
    labelled = request.labelled_set
    if model.kind == "classifier":
        if labelled is None:
            raise ValidationError(str(_("No labelled set to judge %(ref)s on: request again choosing one.",
                                        ref=version.ref)))
        pack["evaluation"] = classifier_evaluation(version, labelled, baseline)
    elif model.kind == "embedder" and production and production.pk != version.pk and labelled is not None:
        pack["evaluation"] = {"labelled_set": labelled.name,
                              "embedding_agreement": compare_embedders(version.pk, production.pk,
                                                                       [i["text"] for i in labelled.items[:256]])}
    pack["replay"] = replay(version, baseline, request.replay_size)
    pack["shadow"] = shadow_evidence(version, production)
    return pack


def segments_worse(candidate: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Segments where the candidate is less accurate than production, even when it is better on average."""
    if not base:
        return []
    worse = []
    for key, values in candidate.get("by_segment", {}).items():
        for value, metrics in values.items():
            other = base.get("by_segment", {}).get(key, {}).get(value)
            if (other and metrics["accuracy"] is not None and other["accuracy"] is not None
                    and metrics["accuracy"] < other["accuracy"]):
                worse.append({"segment": key, "value": value, "n": metrics["n"], "candidate": metrics["accuracy"],
                              "production": other["accuracy"],
                              "delta": round(metrics["accuracy"] - other["accuracy"], 4),
                              "better_on_average": (candidate["accuracy"] or 0) > (base["accuracy"] or 0)})
    return sorted(worse, key=lambda w: w["delta"])


ESCALATION_THRESHOLD = 0.8


def escalation_threshold(graph: dict[str, Any], node_id: str) -> float:
    """The confidence below which the node's items go to a person: the route right after it, else 0.8."""
    nodes = {n["id"]: n for n in graph.get("nodes", [])}
    for edge in graph.get("edges", []):
        target = nodes.get(edge.get("target"))
        if edge.get("source") == node_id and target and target.get("type") == "route":
            bounds = [b.get("min_confidence") for b in (target.get("config") or {}).get("branches", [])
                      if b.get("min_confidence") is not None]
            if bounds:
                return float(min(bounds))
        if edge.get("source") == node_id and target and target.get("type") == "cascade":
            return float((target.get("config") or {}).get("small_threshold", ESCALATION_THRESHOLD))
    return ESCALATION_THRESHOLD


def shadow_evidence(version: Any, production: Any, limit: int = 2000) -> dict[str, Any] | None:
    """Live agreement of the shadow (this version) with production on recent runs, and how many more
    (or fewer) items each would send to a person."""
    decisions = list(Decision.objects.filter(output__shadow__model_ref=version.ref, error="")
                     .select_related("run__version").order_by("-id")[:limit])
    if not decisions:
        return {"n": 0, **_note(_("%(ref)s has not run in shadow yet (turn on 'shadow' on a classify node and set "
                                  "%(alias)s)", ref=version.ref, alias=f"{version.model.name}@shadow"))}
    agree = esc_prod = esc_shadow = 0
    thresholds: dict[tuple[int, str], float] = {}
    disagreements = []
    for d in decisions:
        shadow = d.output.get("shadow") or {}
        key = (d.run.version_id, d.node)
        if key not in thresholds:
            thresholds[key] = escalation_threshold(d.run.version.graph, d.node)
        threshold = thresholds[key]
        if shadow.get("label") == d.label:
            agree += 1
        elif len(disagreements) < 50:
            disagreements.append({"item": d.item_id, "run": d.run_id, "production": d.label,
                                  "production_confidence": d.confidence,
                                  "shadow": shadow.get("label"), "shadow_confidence": shadow.get("confidence")})
        esc_prod += int((d.confidence or 0) < threshold)
        esc_shadow += int((shadow.get("confidence") or 0) < threshold)
    n = len(decisions)
    return {"n": n, "agreement": round(agree / n, 4), "escalation_production": round(esc_prod / n, 4),
            "escalation_shadow": round(esc_shadow / n, 4),
            "escalation_difference": round((esc_shadow - esc_prod) / n, 4),
            "thresholds": sorted(set(thresholds.values())), "disagreements": disagreements,
            "production_refs": sorted({d.model_ref for d in decisions})}


def shorten(text: Any, limit: int = TEXT_SHOWN) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _replayed_decisions(baseline: dict[str, Any], size: int) -> list[Any]:
    decisions = Decision.objects.filter(error="").select_related("item")
    if baseline["kind"] == "production":
        decisions = decisions.filter(model_ref=baseline["ref"])
    else:  # the step's zero-shot decisions
        decisions = decisions.filter(run__workflow_id=baseline["workflow"], node=baseline["node"])
    return list(decisions.order_by("-id")[:size])


def replay(version: Any, baseline: dict[str, Any], size: int) -> dict[str, Any] | None:
    """Re-run the candidate on the last `size` documents production (or the zero-shot step it is to
    replace) decided: per document its text, both labels, whether they agree and its run and item
    (the page links each to its trace), and agreement by segment (the payload's segment columns)."""
    if baseline["kind"] == "none" or size <= 0:
        return None
    if version.model.kind != "classifier":
        return {"n": 0, **_note(_("replay compares labels; embedders are compared by cosine agreement in the "
                                  "evaluation"))}
    decisions = _replayed_decisions(baseline, size)
    if not decisions:
        return {"n": 0, **_note(_("production has not processed any document yet"))}
    runtime = loader.load(version.pk)
    outputs, ms = run_runtime(runtime, [d.item.payload for d in decisions])
    rows = []
    segments: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for decision, out in zip(decisions, outputs, strict=True):
        payload = decision.item.payload or {}
        agree = out.get("label") == decision.label
        rows.append({"item": decision.item_id, "run": decision.run_id, "text": shorten(payload.get("text")),
                     "production": decision.label, "production_confidence": decision.confidence,
                     "candidate": out.get("label"), "candidate_confidence": out.get("confidence"), "agree": agree})
        for key in SEGMENT_KEYS:
            value = payload.get(key)
            if value not in (None, "") and not isinstance(value, dict | list):
                counts = segments[key][str(value)]
                counts[0] += 1
                counts[1] += int(agree)
    agreed = sum(r["agree"] for r in rows)
    counts = Counter(o.get("label") for o in outputs)
    return {"n": len(rows), "agreement": round(agreed / len(rows), 4), "changed_count": len(rows) - agreed,
            # disagreements first: they are what the validator must look at
            "rows": sorted(rows, key=lambda r: r["agree"])[:REPLAY_ROWS],
            "by_segment": {key: {value: {"n": n, "agreement": round(a / n, 4)} for value, (n, a) in values.items()}
                           for key, values in segments.items()},
            "candidate_label_mix": dict(counts), "latency_ms_per_item": ms, "against": baseline["kind"]}
