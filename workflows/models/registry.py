"""The model registry: models, immutable content-addressed versions, aliases, large-model endpoints.

Aliases (production / candidate / shadow) are the only thing that moves. Here they are set once at
set-up for packaged models; every later move goes through governance/promotion.py (four eyes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from . import blobs
from .audit import record
from .immutable import ImmutableModel

# Choice labels are lazy translations: get_FOO_display() then speaks the reader's language (the English
# label is what migrations record, so wrapping it changes no schema).
KINDS = [
    ("embedder", _("Embedder")),
    ("classifier", _("Classifier")),
    ("extractor", _("Extractor")),
    ("generator", _("Generative model")),
    ("ocr", "OCR"),
]
SOURCES = [("packaged", _("Packaged")), ("trained", _("Trained")), ("quantised", _("Quantised")),
           ("imported", _("Imported"))]
LOCATIONS = [("on_premise", _("On premise")), ("external", _("External"))]
ALIASES = [("production", "production"), ("candidate", "candidate"), ("shadow", "shadow")]
REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*)(?:@(?P<alias>[a-z]+)|:v(?P<number>[0-9]+))$")


class RegisteredModel(models.Model):
    name = models.SlugField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=KINDS)
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=80, blank=True)
    attribution = models.TextField(blank=True)
    # A classifier made for one step of one workflow (a zero-shot classify node's classifier-to-be):
    # that node's review labels attach to it, and once it has a production version the node decides
    # with it instead of zero-shot (governance/classifiers.py).
    origin_workflow = models.ForeignKey("workflows.Workflow", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="learned_classifiers")
    origin_node = models.CharField(max_length=64, blank=True)
    # The labels (label → description) a classifier was created for, before any version has them.
    seed_labels = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["origin_workflow", "origin_node"],
                                               condition=~models.Q(origin_node=""), name="one_classifier_per_node")]

    def __str__(self) -> str:
        return self.name

    def alias(self, name: str) -> ModelVersion | None:
        found = self.aliases.filter(name=name).select_related("version").first()
        return found.version if found else None


class ModelVersion(ImmutableModel):
    change_refused = "A model version is immutable; register a new version instead."
    delete_refused = "A model version is immutable and cannot be deleted."

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Hash of the main artifact file.")
    size = models.BigIntegerField()
    source = models.CharField(max_length=20, choices=SOURCES)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    runtime = models.CharField(max_length=40, help_text="Which runtime loads it (minilm, head, tfidf, rampart, gguf…).")
    # Runtime metadata from build.py; file paths stored relative to ARTIFACTS_DIR (packaged models), or
    # only their names when "store" says the files are in the artifact store (`localise`).
    meta = models.JSONField(default=dict)
    labels = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    licence = models.CharField(max_length=80, blank=True)
    attribution = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    trained_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="unique_model_version_number"),
            models.UniqueConstraint(fields=["model", "sha256"], name="unique_model_artifact"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}:v{self.number}"


    @property
    def ref(self) -> str:
        return f"{self.model.name}:v{self.number}"

    def runtime_meta(self) -> dict[str, Any]:
        """The build metadata with paths to files on this machine (`localise`)."""
        return localise(self.meta)

    def lineage(self) -> list[ModelVersion]:
        """This version and every version it was made from, nearest first (parent links; a loop,
        which immutability should make impossible, is cut rather than followed)."""
        chain: list[ModelVersion] = []
        seen: set[int] = set()
        current: ModelVersion | None = self
        while current is not None and current.pk not in seen:
            seen.add(current.pk)
            chain.append(current)
            current = current.parent
        return chain

    def pin(self) -> dict[str, Any]:
        """What a run records for each model reference it resolved."""
        return {"version_id": self.pk, "ref": self.ref, "model": self.model.name, "number": self.number,
                "sha256": self.sha256, "runtime": self.runtime, "kind": self.model.kind}


class Alias(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=20, choices=ALIASES)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="unique_alias_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name} → v{self.version.number}"


class LLMEndpoint(models.Model):
    """A large-model endpoint speaking the OpenAI chat-completions protocol."""

    ON_PREMISE, EXTERNAL = "on_premise", "external"
    name = models.SlugField(max_length=80, unique=True)
    base_url = models.URLField(help_text="Up to and including /v1, e.g. http://127.0.0.1:8088/v1")
    model_name = models.CharField(max_length=120)
    location = models.CharField(max_length=20, choices=LOCATIONS)
    region = models.CharField(max_length=40, help_text="Where the data goes, e.g. 'local', 'EU (Milan)', 'US'.")
    api_key_env = models.CharField(max_length=80, blank=True, help_text="Environment variable holding the API key.")
    price_in_per_1k = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    price_out_per_1k = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    # What every run together may spend on this endpoint in a calendar month (0: no cap).
    monthly_budget_tokens = models.BigIntegerField(default=0)
    monthly_budget_eur = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_location_display()}, {self.region})"


class WebhookDestination(models.Model):
    """A URL that webhook sinks may POST results to, registered by an administrator.

    A designer picks a destination by name and never types a URL: documents leave the firm only for
    places someone responsible registered, with where they go (on premise or external, and region)
    so the workflow's data-residency policy and redaction apply to them as to large-model endpoints.
    """

    ON_PREMISE, EXTERNAL = LLMEndpoint.ON_PREMISE, LLMEndpoint.EXTERNAL
    name = models.SlugField(max_length=80, unique=True)
    url = models.URLField(max_length=500, help_text="http(s) URL the results are POSTed to.")
    location = models.CharField(max_length=20, choices=LOCATIONS,
                                help_text="External destinations must resolve to public addresses; on-premise ones "
                                          "may be private or loopback addresses.")
    region = models.CharField(max_length=40, help_text="Where the data goes, e.g. 'local', 'EU (Milan)', 'US'.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_location_display()}, {self.region})"


# --- references ---------------------------------------------------------------------------------


def parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    match = REF.match(ref or "")
    if not match:
        raise LookupError(f"'{ref}' is not a model reference; write name@production or name:v3.")
    number = match["number"]
    return match["name"], match["alias"], int(number) if number else None


def resolve(ref: str) -> ModelVersion:
    """The concrete version a reference points at now. Raises LookupError saying what is missing."""
    name, alias, number = parse_ref(ref)
    try:
        model = RegisteredModel.objects.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise LookupError(f"No model named '{name}' is registered.") from None
    if alias is not None:
        version = model.alias(alias)
        if version is None:
            raise LookupError(f"Model '{name}' has no '{alias}' alias yet.")
        return version
    try:
        return model.versions.select_related("model").get(number=number)
    except ModelVersion.DoesNotExist:
        raise LookupError(f"Model '{name}' has no version {number}.") from None


def model_named(ref: str) -> RegisteredModel | None:
    """The registered model a reference names, whichever alias or version it points at (None when the
    reference is malformed or names no model)."""
    try:
        name = parse_ref(ref)[0]
    except LookupError:
        return None
    return RegisteredModel.objects.filter(name=name).first()


def alias_exists(ref: str) -> bool:
    try:
        resolve(ref)
    except LookupError:
        return False
    return True


def endpoint_exists(name: str) -> bool:
    return LLMEndpoint.objects.filter(name=name, enabled=True).exists()


def destination_exists(name: str) -> bool:
    return WebhookDestination.objects.filter(name=name, enabled=True).exists()


def model_choices(kind: str = "") -> list[tuple[str, str]]:
    """(reference, label) for every alias and version, for the canvas's model selects."""
    models_ = RegisteredModel.objects.prefetch_related("aliases__version", "versions")
    if kind:
        models_ = (models_.filter(kind=kind) if kind != "classifier"
                   else models_.filter(kind__in=["classifier", "embedder"]))
    choices = []
    for model in models_:
        for alias in sorted(model.aliases.all(), key=lambda a: a.name != "production"):
            choices.append((f"{model.name}@{alias.name}", f"{model.name}@{alias.name} (now v{alias.version.number})"))
        for version in model.versions.all():
            choices.append((version.ref, f"{version.ref} · {version.get_source_display().lower()}"))
    return choices


def endpoint_choices() -> list[tuple[str, str]]:
    return [(e.name, str(e)) for e in LLMEndpoint.objects.filter(enabled=True)]


def destination_choices() -> list[tuple[str, str]]:
    return [(d.name, str(d)) for d in WebhookDestination.objects.filter(enabled=True)]


# --- artifacts ----------------------------------------------------------------------------------


def _rewrite_paths(meta: Any, fn: Any) -> Any:
    if isinstance(meta, dict):
        return {k: (fn(v) if k == "path" and isinstance(v, str) else _rewrite_paths(v, fn)) for k, v in meta.items()}
    if isinstance(meta, list):
        return [_rewrite_paths(v, fn) for v in meta]
    return meta


def relativise(meta: dict[str, Any]) -> dict[str, Any]:
    root = Path(settings.ARTIFACTS_DIR).resolve()

    def rel(path: str) -> str:
        p = Path(path).resolve()
        return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)

    return _rewrite_paths(meta, rel)


def absolutise(meta: dict[str, Any]) -> dict[str, Any]:
    root = Path(settings.ARTIFACTS_DIR)
    return _rewrite_paths(meta, lambda p: p if Path(p).is_absolute() else str(root / p))


# A version whose meta says so has every file it names (the model and its companions) in the artifact
# store (models/blobs.py): what users make (imports, trained heads, int8 copies) runs on any machine.
# Packaged versions do not: setup_models builds their files from PyPI packages on each machine.
IN_STORE = "database"


def file_entries(meta: Any) -> list[dict[str, Any]]:
    """Every {"path", "sha256", …} entry of a version's meta: the model file and its companions."""
    if isinstance(meta, list):
        return [e for v in meta for e in file_entries(v)]
    if not isinstance(meta, dict):
        return []
    own = [meta] if isinstance(meta.get("path"), str) and isinstance(meta.get("sha256"), str) else []
    return own + [e for k, v in meta.items() if k != "path" for e in file_entries(v)]


def with_paths(meta: Any, fn: Any) -> Any:
    if isinstance(meta, list):
        return [with_paths(v, fn) for v in meta]
    if not isinstance(meta, dict):
        return meta
    out = {k: with_paths(v, fn) for k, v in meta.items()}
    if isinstance(meta.get("path"), str) and isinstance(meta.get("sha256"), str):
        out["path"] = fn(meta)
    return out


def localise(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` with paths to files on this machine: for a version in the artifact store, local copies
    checked against their sha256 (fetched when missing or altered); for a packaged one, its files under
    ARTIFACTS_DIR, which must be there (blobs.ArtifactMissing says to run setup_models if not)."""
    if meta.get("store") == IN_STORE:
        return with_paths(meta, lambda e: str(blobs.ensure_local(e["sha256"], Path(e["path"]).suffix)))
    resolved = absolutise(meta)
    missing = [e["path"] for e in file_entries(resolved) if not Path(e["path"]).is_file()]
    if missing:
        raise blobs.ArtifactMissing(
            f"model {meta.get('name') or '?'} is a packaged model whose file {missing[0]} is not on this machine: "
            f"run 'manage.py setup_models' on this machine (packaged models are built on each machine, not copied)")
    return resolved


def register_version(*, model_name: str, kind: str, meta: dict[str, Any], source: str, runtime: str,
                     parent: ModelVersion | None = None, author: Any = None, trained_by: Any = None,
                     description: str = "", note: str = "") -> tuple[ModelVersion, bool]:
    """Register an artifact as a new immutable version; the same artifact again returns the existing one."""
    with transaction.atomic():
        model, _ = RegisteredModel.objects.get_or_create(
            name=model_name,
            defaults={"kind": kind, "description": description, "licence": meta.get("licence", ""),
                      "attribution": meta.get("attribution", "")},
        )
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        existing = model.versions.filter(sha256=meta["sha256"]).first()
        if existing:
            return existing, False
        number = (model.versions.aggregate(models.Max("number"))["number__max"] or 0) + 1
        version = ModelVersion.objects.create(
            model=model, number=number, sha256=meta["sha256"], size=meta["size"], source=source, parent=parent,
            runtime=runtime, meta=meta if meta.get("store") == IN_STORE else relativise(meta),
            labels=meta.get("labels") or [], metrics=meta.get("metrics") or {},
            licence=meta.get("licence", model.licence), attribution=meta.get("attribution", model.attribution),
            author=author if getattr(author, "is_authenticated", False) else None,
            trained_by=trained_by if getattr(trained_by, "is_authenticated", False) else None, note=note[:300],
        )
        record("model.version.register", actor=author, obj=version, model=model.name, number=number,
               sha256=version.sha256, source=source, parent=parent.ref if parent else None)
    return version, True


def set_initial_alias(version: ModelVersion, alias: str, *, actor: Any = None) -> bool:
    """Point an alias that does not exist yet (set-up only). Moving an existing alias is a promotion."""
    with transaction.atomic():
        _, created = Alias.objects.get_or_create(model=version.model, name=alias, defaults={"version": version})
        if created:
            record("model.alias.initial", actor=actor, obj=version, alias=alias, model=version.model.name,
                   number=version.number)
    return created


class LabelledSet(models.Model):
    """Documents with their true labels: evidence for promotions, and training data."""

    name = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="labelled_sets", help_text="The model this set evaluates by default.")
    source = models.CharField(max_length=20,
                              choices=[("packaged", _("Packaged")), ("upload", pgettext_lazy("a labelled set's source",
                                                                                                 "Upload")),
                                       ("reviews", _("Reviews"))])
    # [{"text": …, "label": …, "segment": {"language": "it", …}}]; kept small (evaluation, not a data lake).
    items = models.JSONField(default=list)
    labels = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({len(self.items)} items)"


class PromotionRequest(models.Model):
    EVALUATING, READY, EVIDENCE_FAILED, APPROVED, REJECTED, CANCELLED = (
        "evaluating", "ready", "evidence_failed", "approved", "rejected", "cancelled")
    STATUSES = [(EVALUATING, pgettext_lazy("promotion", "evaluating")), (READY, pgettext_lazy("promotion", "ready")),
                (EVIDENCE_FAILED, pgettext_lazy("promotion", "evidence failed")),
                (APPROVED, pgettext_lazy("promotion", "approved")), (REJECTED, pgettext_lazy("promotion", "rejected")),
                (CANCELLED, pgettext_lazy("promotion", "cancelled"))]
    OPEN = (EVALUATING, READY, EVIDENCE_FAILED)

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    alias = models.CharField(max_length=20, choices=ALIASES)
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=STATUSES, default=EVALUATING)
    # Liveness of the worker computing the evidence (governance/liveness.py).
    evidence_heartbeat = models.DateTimeField(null=True, blank=True)
    evidence_attempts = models.PositiveSmallIntegerField(default=0)
    labelled_set = models.ForeignKey(LabelledSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    replay_size = models.PositiveIntegerField(default=200)
    evidence = models.JSONField(default=dict, blank=True)
    evidence_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # The validator saw that approving changes the label set of every workflow on the alias, and said so.
    label_change_acknowledged = models.BooleanField(default=False)
    # What the alias pointed at before approval: the rollback target.
    previous_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version.ref} → {self.alias} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class Label(models.Model):
    """A document's true label: a reviewer's answer (accepted or corrected) or a row of an uploaded file.

    Labels measure live accuracy per node (`predicted` is what the model said) and are the training set
    of the next candidate (governance/training.py).
    """

    # A review answers an escalation (the model was unsure); a spot check answers a random sample of
    # what the model decided alone: only spot checks measure accuracy without bias.
    REVIEW, UPLOAD, SPOT_CHECK = "review", "upload", "spot_check"
    SOURCES = [(REVIEW, pgettext_lazy("a label's source", "review")),
               (UPLOAD, pgettext_lazy("a label's source", "upload")),
               (SPOT_CHECK, pgettext_lazy("a label's source", "spot check"))]
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="truth_labels")
    run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item = models.ForeignKey("workflows.Item", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    review_task = models.OneToOneField("workflows.ReviewTask", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="truth_label")
    node = models.CharField(max_length=64, blank=True, help_text="The model node whose proposal was reviewed.")
    model_ref = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    label = models.CharField(max_length=120)
    predicted = models.CharField(max_length=120, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    segment = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=SOURCES, default=REVIEW)
    # "" for the document's class; else the output field a reviewer corrected ("fields.iban", "summary",
    # "answer"): field-level labels, kept apart from the classes training reads.
    field = models.CharField(max_length=120, blank=True, default="")
    # A field label's whole corrected value when `label` (120 characters, for grouping) cannot hold it:
    # a reviewer's rewritten summary or answer.
    value = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["model", "created_at"]), models.Index(fields=["node", "model_ref"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.source})"

    @property
    def corrected(self) -> bool:
        return bool(self.predicted) and self.predicted != self.label


class ModelJob(models.Model):
    """Training a head or optimising (int8) a model, done by a worker; its progress is shown live."""

    TRAIN, OPTIMISE = "train", "optimise"
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [(QUEUED, pgettext_lazy("model job", "queued")), (RUNNING, pgettext_lazy("model job", "running")),
                (SUCCEEDED, pgettext_lazy("model job", "succeeded")), (FAILED, pgettext_lazy("model job", "failed"))]

    kind = models.CharField(max_length=10, choices=[(TRAIN, pgettext_lazy("model job", "train")),
                                                    (OPTIMISE, pgettext_lazy("model job", "optimise"))])
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="jobs")
    base_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                     help_text="Training: the production version (parent; none for a new "
                                               "classifier). Optimising: the version quantised.")
    labelled_set = models.ForeignKey(LabelledSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    use_reviews = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=QUEUED)
    # Liveness of the worker running it (governance/liveness.py takes a silent job over, then fails it).
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress = models.FloatField(default=0)
    message = models.CharField(max_length=300, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    result_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.model.name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.QUEUED, self.RUNNING)
