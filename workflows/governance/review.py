"""The review queue's domain side: what a reviewer sees of an item, and what deciding it records.

Two kinds of task. An escalation parks its item until a person decides it; the decision resumes the
item downstream (engine/launch.py `decide_review`). A spot check samples an item a model decided
alone: the item has gone on, so deciding one records a label and resumes nothing; only spot checks
measure accuracy without the bias of looking at unsure items only.

A reviewer sees everything the line produced for the item so far (the label with its alternatives,
every extracted field, the summary, the drafted answer, a large model's suggestion) and may correct
any of it. Each correction is a label of its own: the class label has `field` "", a corrected output
names it ("fields.iban", "summary", "answer"). Labels give live accuracy per node and train the next
candidate; the corrected values themselves travel downstream in the task's result, which the executor
merges into the item when it resumes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from workflows.engine.launch import decide_review
from workflows.engine.results import review_answers
from workflows.engine.state import apply_decision
from workflows.governance.classifiers import classifier_for_node
from workflows.graph import CATALOG
from workflows.models import Decision, ReviewTask
from workflows.models.audit import record
from workflows.models.lifecycle import review_answer_for_audit
from workflows.models.registry import Label, RegisteredModel, parse_ref
from workflows.roles import require

# Output fields where a large model proposes rather than decides (the llm node of the triage
# template asks for a label; the cascade keeps the large model's unsure answer): shown, not edited.
SUGGESTIONS = ("suggested_label", "large_answer")
SEGMENT_KEYS = ("language", "lang", "channel", "customer_type", "segment")
LABEL_LENGTH = 120  # Label.label; the full corrected value travels in the task's result
TEXT_LIMIT = 20_000


def open_tasks(queue: str = "", kind: str | None = None):
    tasks = (ReviewTask.objects.filter(status=ReviewTask.OPEN)
             .select_related("item", "run__workflow", "run__version"))
    if kind:
        tasks = tasks.filter(kind=kind)
    return tasks.filter(queue=queue) if queue else tasks


def kind_of(value: Any) -> str | None:
    """A kind of task as a query names it, or None (every kind)."""
    return value if value in (ReviewTask.ESCALATION, ReviewTask.SPOT_CHECK) else None


def model_decision(task: ReviewTask, decisions: Iterable[Decision]) -> Decision | None:
    """The model's decision a task checks, among the item's decisions in ledger order. An escalation
    checks the latest labelled one before its review node; a spot check the decision of the node it
    samples (else the latest labelled one)."""
    labelled = [d for d in decisions if d.label is not None and d.model_ref]
    if task.kind == ReviewTask.SPOT_CHECK:
        own = [d for d in labelled if d.node == task.node]
        return (own or labelled or [None])[-1]
    before = [d for d in labelled if d.node != task.node]
    return before[-1] if before else None


def allowed_labels(task: ReviewTask, decision: Decision | None = None) -> list[str]:
    labels = list(task.proposal.get("labels") or [])
    if not labels and decision is not None:
        scores = (decision.output or {}).get("scores") or {}
        labels = list(scores)
        if not labels:
            model = _model_of(decision.model_ref)
            version = model.alias("production") if model else None
            labels = list(version.labels) if version else []
    proposal = (task.proposal.get("proposal") or task.proposal).get("label")
    if proposal and proposal not in labels:
        labels.insert(0, proposal)
    return labels


def proposal_of(task: ReviewTask) -> dict[str, Any]:
    inner = task.proposal.get("proposal")
    return inner if isinstance(inner, dict) else task.proposal


def _model_of(model_ref: str) -> RegisteredModel | None:
    try:
        name = parse_ref(model_ref)[0]
    except LookupError:
        return None
    return RegisteredModel.objects.filter(name=name).first()


def label_owner(task: ReviewTask, decision: Decision | None) -> RegisteredModel | None:
    """The classifier a label trains: the one the step decided with; for a step that decided
    zero-shot on an embedder (which has no head to train), the step's own classifier-to-be."""
    if decision is None:
        return None
    model = _model_of(decision.model_ref)
    if model is not None and model.kind == "classifier":
        return model
    if model is not None and model.kind == "embedder" and decision.label:
        return classifier_for_node(task.run.workflow, decision.node)
    return model


# --- what the line produced for an item -----------------------------------------------------------


@dataclass(frozen=True)
class LineOutputs:
    """What a line can produce that a reviewer may correct, read from its graph: each extracted field
    and each text output (the summary, a drafted answer) with the node that writes it."""

    fields: dict[str, str]
    texts: dict[str, str]
    suggestions: tuple[str, ...]

    @classmethod
    def of(cls, graph: Mapping[str, Any]) -> LineOutputs:
        fields: dict[str, str] = {}
        texts: dict[str, str] = {}
        suggestions = list(SUGGESTIONS)
        for n in graph.get("nodes") or []:
            if not isinstance(n, dict):
                continue
            kind, config, node = n.get("type"), n.get("config") or {}, str(n.get("id"))
            if kind == "extract":
                for name in sorted(CATALOG["extract"].adds(config)):
                    if name.startswith("fields."):
                        fields.setdefault(name.removeprefix("fields."), node)
            elif kind == "summarise":
                texts.setdefault("summary", node)
            elif kind == "llm":
                output = str(config.get("output_field") or "answer")
                if output in SUGGESTIONS or output.endswith("label"):
                    suggestions.append(output)
                else:
                    texts.setdefault(output, node)
        return cls(fields, texts, tuple(dict.fromkeys(suggestions)))


def values_of(found: Any) -> list[str]:
    """An extracted field as the values a person reads: spans by their text, scalars as text."""
    if found is None:
        return []
    values = []
    for v in found if isinstance(found, list) else [found]:
        v = v.get("value") if isinstance(v, dict) else v
        if v is not None and str(v).strip():
            values.append(str(v))
    return values


@dataclass
class TaskView:
    """A task as the queue shows it: the document, the model's label with its alternatives, and every
    output the line produced so far (the item's payload merged with each node's output, the way the
    executor and the read side merge them)."""

    task: ReviewTask
    decision: Decision | None
    proposal: dict[str, Any]
    choices: list[str]
    text: str
    data: dict[str, Any]
    fields: dict[str, list[str]] = field(default_factory=dict)
    field_nodes: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    text_nodes: dict[str, str] = field(default_factory=dict)
    suggestion: str = ""
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # node → model_ref of its decision

    @property
    def is_spot_check(self) -> bool:
        return self.task.kind == ReviewTask.SPOT_CHECK

    @property
    def _payload(self) -> dict[str, Any]:
        return self.task.item.payload if isinstance(self.task.item.payload, dict) else {}

    @property
    def original(self) -> str:
        """The sha256 of the file the document came from (a PDF, a scan), or "" for a plain text item
        (the link's view checks that the run took it)."""
        sha = self._payload.get("original")
        return sha if isinstance(sha, str) and len(sha) == 64 else ""

    @property
    def original_name(self) -> str:
        return str(self._payload.get("file_name") or "")

    @property
    def field_rows(self) -> list[tuple[str, str]]:
        return [(name, "; ".join(values)) for name, values in self.fields.items()]

    def as_json(self) -> dict[str, Any]:
        task = self.task
        return {"id": task.pk, "kind": task.kind, "run": task.run_id, "item": task.item_id, "seq": task.item.seq,
                "node": task.node, "queue": task.queue, "instructions": task.instructions, "text": self.text,
                "proposal": self.proposal.get("label"), "confidence": self.proposal.get("confidence"),
                "labels": self.choices, "alternatives": self.alternatives,
                "model_ref": self.decision.model_ref if self.decision else None,
                "fields": self.fields, "summary": self.texts.get("summary"), "answer": self.texts.get("answer"),
                "texts": self.texts, "suggestion": self.suggestion or None}


def task_views(tasks: Iterable[ReviewTask]) -> list[TaskView]:
    """The queue's tasks with what the line produced for each: one query for every item's decisions."""
    tasks = list(tasks)
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for d in (Decision.objects.filter(item_id__in={t.item_id for t in tasks}).order_by("id")
              .only("id", "item_id", "node", "port", "output", "label", "confidence", "model_ref")):
        decisions[d.item_id].append(d)
    answers = review_answers(list(decisions))
    outputs: dict[int, LineOutputs] = {}
    views = []
    for task in tasks:
        version = task.run.version
        if version.pk not in outputs:
            outputs[version.pk] = LineOutputs.of(version.graph or {})
        views.append(_view(task, decisions[task.item_id], outputs[version.pk], answers))
    return views


def _view(task: ReviewTask, decisions: list[Decision], line: LineOutputs,
          answers: dict[tuple[int, str], dict[str, Any]]) -> TaskView:
    payload = task.item.payload if isinstance(task.item.payload, dict) else {}
    data = dict(payload)
    refs: dict[str, str] = {}
    writers: dict[str, str] = {}  # extracted field → the last node whose output holds it
    for d in decisions:
        refs[d.node] = d.model_ref
        if not isinstance(d.output, dict):
            continue
        if isinstance(d.output.get("fields"), dict):
            writers.update(dict.fromkeys(d.output["fields"], d.node))
        # The item as the model that is checked saw it: a reviewer's earlier edits included.
        apply_decision(data, d.port, d.output, answers.get((task.item_id, d.node)))
    decision = model_decision(task, decisions)
    proposal = proposal_of(task)
    view = TaskView(task=task, decision=decision, proposal=proposal, choices=allowed_labels(task, decision),
                    text=str(payload.get("text") or payload.get("subject") or ""), data=data, refs=refs)
    # Fields: what any extract node that handled the item looks for (empty when it found nothing,
    # to be filled in), and whatever else the item carries under "fields".
    found = data.get("fields") if isinstance(data.get("fields"), dict) else {}
    for name, node in line.fields.items():
        if node in refs:
            view.fields[name], view.field_nodes[name] = values_of(found.get(name)), node
    for name, value in found.items():
        if name not in view.fields:
            view.fields[name], view.field_nodes[name] = values_of(value), writers.get(name, "")
    # Texts a node already wrote; the held large-model node's own output, which the person writes.
    for name, node in line.texts.items():
        if name in data or node == task.node:
            view.texts[name], view.text_nodes[name] = _as_text(data.get(name)), node
    view.suggestion = next((str(v) for v in (proposal.get(s) or data.get(s) for s in line.suggestions) if v), "")
    scores = (decision.output or {}).get("scores") if decision is not None else None
    if isinstance(scores, dict):
        view.alternatives = [{"label": str(k), "score": v} for k, v in
                             sorted(scores.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)]
    return view


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


# --- corrections ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    """One output a reviewer changed: `field` as Label.field names it, what the line said, what is true."""

    field: str
    node: str
    before: list[str] | str
    after: list[str] | str

    @staticmethod
    def shown(value: list[str] | str) -> str:
        return "; ".join(value) if isinstance(value, list) else value


def _clean(value: str) -> str:
    # Browsers send a textarea's line breaks as CRLF: the same text must not count as a correction.
    return value.replace("\r\n", "\n").strip()


def _field_values(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in (_clean(part) for part in value.split(";")) if v]
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return [v for v in (_clean(str(part)) for part in value) if v]
    raise ValidationError(gettext("fields.%(field)s: give the value as text (several separated by ;) or a list "
                                  "of texts.") % {"field": name})


def read_corrections(view: TaskView, *, fields: Mapping[str, Any] | None = None,
                     texts: Mapping[str, Any] | None = None) -> list[Correction]:
    """The outputs the reviewer changed, or a ValidationError that names every unknown one and says
    which outputs this item has."""
    unknown = [f"fields.{name}" for name in (fields or {}) if name not in view.fields]
    unknown += [name for name in (texts or {}) if name not in view.texts]
    if unknown:
        known = [f"fields.{name}" for name in view.fields] + list(view.texts)
        raise ValidationError(
            gettext("Unknown output %(fields)s: this item has %(known)s.")
            % {"fields": ", ".join(f"'{u}'" for u in unknown),
               "known": ", ".join(known) if known else gettext("no output a reviewer can correct")})
    found = []
    for name, value in (fields or {}).items():
        after = _field_values(name, value)
        if after != view.fields[name]:
            found.append(Correction(f"fields.{name}", view.field_nodes.get(name, ""), view.fields[name], after))
    for name, value in (texts or {}).items():
        if value is not None and not isinstance(value, str):
            raise ValidationError(gettext("%(field)s: give the corrected text.") % {"field": name})
        after = _clean(value or "")
        if len(after) > TEXT_LIMIT:
            raise ValidationError(gettext("%(field)s: at most %(limit)s characters.")
                                  % {"field": name, "limit": TEXT_LIMIT})
        if after != _clean(view.texts[name]):
            found.append(Correction(name, view.text_nodes.get(name, ""), view.texts[name], after))
    return found


def downstream(corrections: list[Correction]) -> dict[str, Any]:
    """The corrected values as the item carries them on (merged into it when it resumes): extracted
    fields as spans marked as a person's, texts whole."""
    result: dict[str, Any] = {}
    for c in corrections:
        if c.field.startswith("fields."):
            result.setdefault("fields", {})[c.field.removeprefix("fields.")] = [
                {"value": v, "source": "review"} for v in c.after]
        else:
            result[c.field] = c.after
    return result


def decision_body(data: Mapping[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An API decision as (label or None, corrected fields, corrected texts, extra): `fields` is an
    object of extracted fields; every other key but `label` and `note` names a text output ("summary",
    "answer"), so a misspelt one is refused by read_corrections rather than ignored."""
    label = data.get("label")
    fields = data.get("fields") or {}
    if not isinstance(fields, Mapping):
        raise ValidationError(gettext("fields: give an object of field names and their values."))
    texts = {k: v for k, v in data.items() if k not in ("label", "fields", "note")}
    note = data.get("note")
    return (str(label) if label else None), dict(fields), texts, ({"note": str(note)[:2000]} if note else {})


# --- deciding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    label: Label | None  # the class label; None when the reviewer gave none (an API decision on outputs only)
    corrections: list[Label]


def decide(task: ReviewTask, *, user: Any, label: str, extra: dict[str, Any] | None = None,
           fields: Mapping[str, Any] | None = None, texts: Mapping[str, Any] | None = None) -> Label | None:
    """Accept (label == proposal) or correct; the class label, or None if already decided. See
    decide_task, which also returns the field labels made with it."""
    decided = decide_task(task, user=user, label=label or "", extra=extra, fields=fields, texts=texts)
    return decided.label if decided is not None else None


def decide_task(task: ReviewTask, *, user: Any, label: str | None, extra: dict[str, Any] | None = None,
                fields: Mapping[str, Any] | None = None, texts: Mapping[str, Any] | None = None) -> Decided | None:
    """Decide a task: the class label (None: give none) and the corrected outputs. An escalation
    resumes its item with the corrected values; a spot check only records. None if already decided.

    `extra` (a note) travels with the decision into the item's downstream payload."""
    require(user, "review.work", task)
    view = task_views([task])[0]
    spot = view.is_spot_check
    decision = view.decision
    # A spot check of a classifier needs its class; one of an extractor has none, only its fields.
    if label is not None or (spot and view.proposal.get("label")):
        label = (label or "").strip()
        if not label:
            raise ValidationError(gettext("Pick a label."))
        if view.choices and label not in view.choices:
            raise ValidationError(gettext("'%(label)s' is not one of the labels: %(labels)s.")
                                  % {"label": label, "labels": ", ".join(view.choices)})
    corrections = read_corrections(view, fields=fields, texts=texts)
    predicted = (decision.label if decision else None) or view.proposal.get("label") or ""
    result = {**(extra or {}), **downstream(corrections)}
    if label:
        result.update({"label": label, "corrected": bool(predicted) and label != predicted})
    with transaction.atomic():
        claimed = _close_spot_check(task, user, result) if spot else decide_review(task, user=user, result=result)
        if not claimed:
            return None
        source = Label.SPOT_CHECK if spot else Label.REVIEW
        payload = task.item.payload or {}
        text = view.text[:TEXT_LIMIT]
        segment = {k: str(payload[k]) for k in SEGMENT_KEYS if isinstance(payload.get(k), str | int)}
        made = None
        if label:
            made = Label.objects.create(
                model=label_owner(task, decision), run_id=task.run_id, item_id=task.item_id,
                review_task=task, node=decision.node if decision else task.node,
                model_ref=decision.model_ref if decision else "", text=text, label=label, predicted=predicted,
                confidence=decision.confidence if decision else view.proposal.get("confidence"), segment=segment,
                source=source, created_by=user)
        # Field labels name the node that produced the value; Label.review_task is one-to-one, so only
        # the class label links the task (the field labels share its run, item and time).
        owners = {node: _field_owner(view.refs.get(node, "")) for node in {c.node for c in corrections}}
        rows = []
        for c in corrections:
            after = Correction.shown(c.after)
            rows.append(Label(model=owners[c.node], run_id=task.run_id, item_id=task.item_id, node=c.node,
                              model_ref=view.refs.get(c.node, ""), text=text, field=c.field,
                              label=after[:LABEL_LENGTH], predicted=Correction.shown(c.before)[:LABEL_LENGTH],
                              value=after if len(after) > LABEL_LENGTH else "",
                              segment=segment, source=source, created_by=user))
        fixed = Label.objects.bulk_create(rows)
    return Decided(made, fixed)


def _field_owner(model_ref: str) -> RegisteredModel | None:
    """A corrected field trains the extractor that found it; summaries and answers have no model to
    train here (a large model, or an embedder that only ranks sentences)."""
    model = _model_of(model_ref) if model_ref else None
    return model if model is not None and model.kind == "extractor" else None


def _close_spot_check(task: ReviewTask, user: Any, result: dict[str, Any]) -> bool:
    """Mark a spot check decided (once: the conditional UPDATE lets one reviewer win); its item has gone
    on already, so nothing resumes."""
    changed = ReviewTask.objects.filter(pk=task.pk, status=ReviewTask.OPEN, kind=ReviewTask.SPOT_CHECK).update(
        status=ReviewTask.DECIDED, result={**result, "reviewed": True}, decided_by=user, decided_at=timezone.now())
    if changed:
        record("review.spot_check", actor=user, obj=task, run=task.run_id, item=task.item_id,
               result=review_answer_for_audit(result))
    return bool(changed)
