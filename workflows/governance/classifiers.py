"""New classifiers: registered from a label set, or made for one step of a workflow.

A zero-shot classify node decides by label descriptions on an embedder. Its reviewers' answers must
train something, and an embedder has no head: so the node gets a classifier of its own (its
"classifier-to-be", a registered classifier with no version yet, created with the node's labels the
first time a label or a training request needs it). Once a version of it is promoted to production,
runs of that workflow decide the step with it (design/references.py pins it at run start); until
then the step stays zero-shot.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext

from workflows.models.audit import record
from workflows.models.graph import Workflow
from workflows.models.registry import RegisteredModel, model_named
from workflows.roles import can, require

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
RESERVED = {"new", "import", "labelled-sets", "jobs"}  # the registry's own pages under /models/


def parse_labels(text: str) -> dict[str, str]:
    """A typed label list: one label per line, optionally `label: a sentence describing it` (the
    description is what zero-shot compares texts with), or labels separated by commas on one line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and ":" not in lines[0]:
        lines = lines[0].split(",")
    labels: dict[str, str] = {}
    for line in lines:
        label, _, description = line.partition(":")
        if label.strip():
            labels[label.strip()] = description.strip()
    return labels


def _clean_labels(labels: Any) -> dict[str, str]:
    """{label: description}; a list of labels is accepted (descriptions empty)."""
    if isinstance(labels, str):
        labels = parse_labels(labels)
    if isinstance(labels, list | tuple):
        labels = {str(label).strip(): "" for label in labels}
    if not isinstance(labels, dict):
        raise ValidationError(gettext("Give the labels as a list, or as an object of labels and their descriptions."))
    cleaned = {str(k).strip()[:120]: str(v or "").strip() for k, v in (labels or {}).items() if str(k).strip()}
    if len(cleaned) < 2:
        raise ValidationError(gettext("A classifier needs at least two labels."))
    return cleaned


def _register(*, name: str, seed_labels: dict[str, str], description: str, user: Any,
              workflow: Workflow | None = None, node: str = "") -> RegisteredModel:
    """The one way a classifier without versions enters the registry (audited); IntegrityError when
    its step has one already."""
    with transaction.atomic():
        model = RegisteredModel.objects.create(
            name=name, kind="classifier", description=description, seed_labels=seed_labels,
            origin_workflow=workflow, origin_node=node,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            attribution=gettext("Trained here on this firm's labelled documents"))
        record("model.create", actor=user, obj=model, name=name, labels=list(seed_labels),
               workflow=workflow.pk if workflow else None, node=node)
    return model


def create_classifier(*, name: str, labels: Any, user: Any, description: str = "") -> RegisteredModel:
    """Register a new classifier with its labels (no version yet: its first comes from training)."""
    require(user, "model.train")
    name = (name or "").strip().lower()
    if not NAME.match(name) or len(name) > 80 or name in RESERVED:
        raise ValidationError(gettext("'%(name)s' is not a model name; use lower-case letters, digits, '-', '_' or "
                                      "'.', starting with a letter or digit.") % {"name": name})
    if RegisteredModel.objects.filter(name=name).exists():
        raise ValidationError(gettext("A model named '%(name)s' exists already; choose another name.") % {"name": name})
    return _register(name=name, seed_labels=_clean_labels(labels), description=description.strip(), user=user)


def node_config(workflow: Workflow, node_id: str) -> dict[str, Any] | None:
    """The config of a node in the workflow's latest version, or None when it is not a classify node."""
    version = workflow.versions.order_by("-number").first()
    for node in (version.graph.get("nodes") or []) if version else []:
        if node.get("id") == node_id and node.get("type") == "classify":
            return node.get("config") or {}
    return None


def _free_name(base: str) -> str:
    base = slugify(base)[:72].strip("-") or "classifier"
    name, n = base, 1
    while RegisteredModel.objects.filter(name=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def classifier_for_node(workflow: Workflow, node_id: str, *, user: Any = None,
                        create: bool = True) -> RegisteredModel | None:
    """A workflow's classify step's own classifier (its classifier-to-be), made on first need with the
    step's labels when `create`; None when the step is not a classify step of the latest version."""
    found = RegisteredModel.objects.filter(origin_workflow=workflow, origin_node=node_id).first()
    if found is not None or not create:
        return found
    config = node_config(workflow, node_id)
    if config is None:
        return None
    labels = config.get("labels") or {}
    try:
        return _register(name=_free_name(f"{workflow.name}-{node_id}"),
                         seed_labels={str(k): str(v or "") for k, v in labels.items()} if isinstance(labels, dict)
                         else {},
                         description=gettext("Learns step '%(node)s' of '%(workflow)s' from its reviewers' labels.")
                         % {"node": node_id, "workflow": workflow.name}, user=user, workflow=workflow, node=node_id)
    except IntegrityError:  # another request made it a moment ago
        return RegisteredModel.objects.get(origin_workflow=workflow, origin_node=node_id)


def label_set(model: RegisteredModel) -> list[str]:
    """The labels a classifier gives: its newest version's, else the labels it was created with
    (sorted, as a trained version orders them: the database does not keep a JSON object's order)."""
    version = model.versions.order_by("-number").first()
    if version is not None and version.labels:
        return list(version.labels)
    return sorted(model.seed_labels or {})


def step_learning(workflow: Workflow, node_id: str, config: dict[str, Any], user: Any) -> dict[str, Any]:
    """What the node panel says of a classify step's learning: which classifier its labels train,
    how many labels it has, and whether a trained version decides the step yet."""
    model = classifier_for_node(workflow, node_id, create=False)
    zero_shot = config.get("method") == "zero_shot" or _is_embedder(config.get("model"))
    if model is None and not zero_shot:
        model = model_named(str(config.get("model") or ""))
    production = model.alias("production") if model is not None else None
    return {"model": model, "zero_shot": zero_shot, "production": production,
            "labels": model.truth_labels.filter(field="").count() if model is not None else 0,
            "can_train": can(user, "model.train", workflow), "node": node_id}


def _is_embedder(ref: Any) -> bool:
    model = model_named(str(ref or ""))
    return model is not None and model.kind == "embedder"
