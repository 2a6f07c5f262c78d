"""Registry, promotions, model jobs and drift pages. Thin: parse, authorise, call governance, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from workflows.access import (
    get_model_for_user,
    get_promotion_for_user,
    get_version_for_user,
    visible_workflow_ids,
    visible_workflows,
)
from workflows.design import texts
from workflows.engine import staging
from workflows.governance import drift as drift_
from workflows.governance import evaluation, labelsets, optimise, promotion, training
from workflows.governance.artifacts import import_model
from workflows.governance.importer import ModelRejected
from workflows.governance.usage import version_usage, workflows_using
from workflows.models.registry import KINDS, LabelledSet, ModelJob, PromotionRequest, RegisteredModel
from workflows.roles import can, require


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.view")
    models = RegisteredModel.objects.prefetch_related("aliases__version", "versions")
    context = {"models": models, "kinds": KINDS,
               "labelled_sets": LabelledSet.objects.select_related("model", "created_by"),
               "import_errors": request.session.pop("import_errors", None)}
    return render(request, "registry/models.html", context)


@login_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = get_model_for_user(request.user, name)
    versions = list(model.versions.select_related("parent__model", "author", "trained_by").prefetch_related("aliases"))
    usage = workflows_using(model.name, visible_workflows(request.user))
    for version in versions:
        version.used_by = version_usage(version, usage)
    context = {"model": model, "versions": versions, "aliases": model.aliases.select_related("version"), "usage": usage,
               "jobs": model.jobs.select_related("base_version", "result_version", "created_by")[:20],
               "requests": (PromotionRequest.objects.filter(version__model=model)
                            .select_related("version", "requested_by")[:20]),
               "labelled_sets": LabelledSet.objects.all(), "reviews": model.truth_labels.count(),
               "alias_names": ["production", "candidate", "shadow"]}
    return render(request, "registry/model.html", context)


@login_required
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = get_version_for_user(request.user, name, number)
    context = {"version": version, "model": version.model, "aliases": [a.name for a in version.aliases.all()],
               "children": version.children.select_related("model"), "labelled_sets": LabelledSet.objects.all(),
               "cannot_optimise": optimise.can_optimise(version),
               "used_by": version_usage(version, workflows_using(version.model.name, visible_workflows(request.user))),
               "import_report": version.meta.get("import_report")}
    return render(request, "registry/version.html", context)


@login_required
@require_http_methods(["POST"])
def model_import(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.train")
    upload = request.FILES.get("file")
    name = (request.POST.get("name") or "").strip().lower()
    labels = [x.strip() for x in (request.POST.get("labels") or "").split(",") if x.strip()]
    try:
        if upload is None or not name:
            raise ModelRejected([gettext("Choose an .onnx file and give the model a name.")])
        version, created, _ = import_model(upload.read(), name=name, kind=request.POST.get("kind") or "classifier",
                                           labels=labels, user=request.user, note=request.POST.get("note", ""))
    except ModelRejected as exc:
        request.session["import_errors"] = texts.translate_all(exc.reasons)
        return redirect("model-list")
    except ValidationError as exc:
        request.session["import_errors"] = exc.messages
        return redirect("model-list")
    messages.success(request, (gettext("Imported as %(ref)s.") if created
                               else gettext("This artifact is already registered as %(ref)s.")) % {"ref": version.ref})
    return redirect("model-version", name=version.model.name, number=version.number)


# Staged files are kept as run uploads keep theirs (engine/staging.py), under this page's own scope.
LABELLED_SET_STAGING = "labelled-set"


def _posted_mapping(request: HttpRequest) -> labelsets.Mapping | None:
    """The columns the person chose on the preview; None when the form had no mapping (guessed)."""
    if "map_text" not in request.POST and "map_label" not in request.POST:
        return None
    return labelsets.Mapping(request.POST.get("map_text", ""), request.POST.get("map_label", ""),
                             tuple(request.POST.getlist("segments")))


def _labelled_upload_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context = {"models": RegisteredModel.objects.filter(kind="classifier"), "max_mb": labelsets.MAX_BYTES / 1e6,
               "form": request.POST, **context}
    return render(request, "registry/labelled_set_upload.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def labelled_set_upload(request: HttpRequest) -> HttpResponse:
    """Upload → preview (rows, columns, the mapping guessed) → save with the columns chosen. A file
    whose columns are clear is saved at once when no preview is asked for."""
    require(request.user, "model.train")
    if request.method == "GET":
        return _labelled_upload_page(request, {})
    upload = request.FILES.get("file")
    token = request.POST.get("staged", "") if upload is None else ""
    model = RegisteredModel.objects.filter(name=request.POST.get("model") or "").first()
    parsed = None

    def keep() -> str:
        """A page showing the mapping form keeps a new file, so choosing the columns does not send it
        again; a file saved at once is never written to disk."""
        return staging.stage(request.session, LABELLED_SET_STAGING, name, data) if upload is not None else token

    try:
        if upload is not None:  # over the cap, UploadCapHandler refused it; read_file checks again
            name, data = upload.name, upload.read()
        elif token and (kept := staging.load(request.session, LABELLED_SET_STAGING, token)):
            name, data = kept
        elif token:
            raise ValidationError(gettext("The previewed file is no longer kept (a day has passed, or you logged "
                                          "out): choose it again."))
        else:
            raise ValidationError(gettext("Choose a CSV or XLSX file."))
        parsed = labelsets.read_file(name, data)
        chosen = _posted_mapping(request)
        if "preview" in request.POST:
            return _labelled_upload_page(request, _preview_context(request, parsed, keep(), chosen))
        items = labelsets.items_from(parsed, chosen)
        labelled = labelsets.create_labelled_set(name=request.POST.get("name") or name.rsplit(".", 1)[0],
                                                 items=items, user=request.user, model=model,
                                                 description=request.POST.get("description", ""))
    except ValidationError as exc:
        context = _preview_context(request, parsed, keep(), _posted_mapping(request)) if parsed else {}
        return _labelled_upload_page(request, {**context, "error": _errors(exc)}, status=400)
    if token:
        staging.discard(request.session, token)
    messages.success(request, gettext("Labelled set '%(name)s': %(count)s documents, labels %(labels)s.")
                     % {"name": labelled.name, "count": len(labelled.items), "labels": ", ".join(labelled.labels)})
    return redirect("model-list")


def _preview_context(request: HttpRequest, parsed: Any, token: str,
                     chosen: labelsets.Mapping | None) -> dict[str, Any]:
    shown = labelsets.preview(parsed)
    return {"preview": parsed.preview(), "columns": shown.columns, "mapping": chosen or shown.suggested,
            "staged": staging.describe(request.session, LABELLED_SET_STAGING, token) if token else None}


def _labelled_set(request: HttpRequest) -> LabelledSet | None:
    pk = request.POST.get("labelled_set")
    return LabelledSet.objects.filter(pk=pk).first() if pk and str(pk).isdigit() else None


@login_required
@require_http_methods(["POST"])
def model_train(request: HttpRequest, name: str) -> HttpResponse:
    model = get_model_for_user(request.user, name)
    require(request.user, "model.train", model)
    try:
        fixed = request.POST.get("C") or ""  # left empty, cross-validation chooses C
        job = training.start_training(model, user=request.user, labelled_set=_labelled_set(request),
                                      use_reviews=bool(request.POST.get("use_reviews")),
                                      C=float(fixed.replace(",", ".")) if fixed else None)
    except (ValidationError, ValueError) as exc:
        messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else gettext("C must be a number."))
        return redirect("model-detail", name=model.name)
    return redirect("model-job", pk=job.pk)


@login_required
@require_http_methods(["POST"])
def model_optimise(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = get_version_for_user(request.user, name, number)
    require(request.user, "model.train", version)
    try:
        job = optimise.start_optimise(version, user=request.user, labelled_set=_labelled_set(request),
                                      per_channel=request.POST.get("per_channel", "on") == "on",
                                      fuse=request.POST.get("fuse") == "on")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("model-version", name=name, number=number)
    return redirect("model-job", pk=job.pk)


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "model.view")
    try:
        job = ModelJob.objects.select_related("model", "base_version__model", "result_version__model", "labelled_set",
                                              "created_by").get(pk=pk)
    except ModelJob.DoesNotExist:
        raise Http404(gettext("No such job.")) from None
    context = {"job": job, "alias_names": ["candidate", "shadow", "production"],
               "labelled_sets": LabelledSet.objects.all()}
    template = "registry/job.html#progress" if request.htmx else "registry/job.html"
    return render(request, template, context)


@login_required
def promotion_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.view")
    requests_ = PromotionRequest.objects.select_related("version__model", "requested_by", "decided_by")
    status = request.GET.get("status") or ""
    if status == "open":
        requests_ = requests_.filter(status__in=PromotionRequest.OPEN)
    elif status:
        requests_ = requests_.filter(status=status)
    return render(request, "registry/promotions.html", {"requests": requests_[:200], "status": status,
                                                         "statuses": PromotionRequest.STATUSES})


@login_required
@require_http_methods(["POST"])
def promotion_create(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = get_version_for_user(request.user, name, number)
    require(request.user, "promotion.request", version)
    try:
        replay = int(request.POST.get("replay_size") or 200)
        created = promotion.request_promotion(version, request.POST.get("alias") or "candidate", user=request.user,
                                              reason=request.POST.get("reason") or "",
                                              labelled_set=_labelled_set(request),
                                              replay_size=max(0, min(replay, 5000)))
    except (ValidationError, ValueError) as exc:
        messages.error(request, _errors(exc) if isinstance(exc, ValidationError)
                       else gettext("Replay size must be a number."))
        return redirect("model-version", name=name, number=number)
    return redirect("promotion-detail", pk=created.pk)


def _decision_rights(user: Any, req: PromotionRequest) -> dict[str, Any]:
    """What the page offers; the server checks again on POST (promotion.check_four_eyes, approve)."""
    why_not = promotion.why_not_decide(req, user)
    may_decide = not why_not
    blockers = promotion.approval_blockers(req) if req.is_open else []
    return {"may_approve": may_decide and req.is_open, "approve_blockers": blockers,
            "may_reject": may_decide and req.is_open,
            "may_cancel": req.is_open and (user.pk == req.requested_by_id or can(user, "promotion.approve", req)),
            "why_not": gettext(why_not) if why_not else ""}  # why_not_decide answers in English


@login_required
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_promotion_for_user(request.user, pk)
    evidence = evaluation.for_display(req.evidence)
    context = {"req": req, "ev": evidence, "evaluation": evidence.get("evaluation") or {},
               "replay": evidence.get("replay") or {}, "baseline": evidence.get("baseline") or {},
               "label_change": promotion.label_change(req) if req.is_open else None,
               "shadow": evidence.get("shadow") or {}, **_decision_rights(request.user, req),
               "may_rollback": (req.status == PromotionRequest.APPROVED and req.previous_version_id
                                and can(request.user, "promotion.request")),
               # A refused decision brings its reason back, so the validator need not type it again.
               "reason": request.session.pop(f"promotion-reason-{req.pk}", "")}
    template = "registry/promotion.html#evidence" if request.htmx else "registry/promotion.html"
    return render(request, template, context)


@login_required
@require_http_methods(["POST"])
def promotion_decide(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_promotion_for_user(request.user, pk)
    action = request.POST.get("action")
    reason = request.POST.get("reason") or ""
    try:
        if action == "approve":
            promotion.approve(req, user=request.user, reason=reason,
                              acknowledge_label_change=request.POST.get("acknowledge_label_change") == "on")
            messages.success(request, gettext("Approved: %(alias)s is now %(ref)s.")
                             % {"alias": f"{req.version.model.name}@{req.alias}", "ref": req.version.ref})
        elif action == "reject":
            promotion.reject(req, user=request.user, reason=reason)
            messages.success(request, gettext("Rejected."))
        elif action == "cancel":
            promotion.cancel(req, user=request.user)
            messages.success(request, gettext("Cancelled."))
        else:
            messages.error(request, gettext("Choose approve, reject or cancel."))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        request.session[f"promotion-reason-{req.pk}"] = reason[:2000]
    return redirect("promotion-detail", pk=req.pk)


@login_required
@require_http_methods(["POST"])
def model_rollback(request: HttpRequest, name: str) -> HttpResponse:
    model = get_model_for_user(request.user, name)
    require(request.user, "promotion.request", model)
    try:
        created = promotion.request_rollback(model.name, request.POST.get("alias") or "production", user=request.user,
                                             reason=request.POST.get("reason") or "rollback requested")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("model-detail", name=model.name)
    messages.success(request, gettext("Rollback requested: %(ref)s. A validator must approve it.")
                     % {"ref": created.version.ref})
    return redirect("promotion-detail", pk=created.pk)


@login_required
def drift_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.view")
    seen = visible_workflow_ids(request.user)
    nodes = [d for d in drift_.report() if seen is None or d.workflow_id in seen]
    return render(request, "registry/drift.html", {"nodes": nodes})


@login_required
@require_http_methods(["POST"])
def drift_action(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.view")
    action = request.POST.get("action")
    node = request.POST.get("node") or ""
    try:
        if action == "route_review":
            version = drift_.route_all_to_review(int(request.POST.get("workflow") or 0), node, user=request.user)
            if version.publication is not None:  # the workflow needs a second person to publish
                messages.success(request, gettext("Saved version %(number)s, in which every item after '%(node)s' "
                                                  "goes to review; its publication waits for a second person.")
                                 % {"number": version.number, "node": node})
            else:
                messages.success(request, gettext("Saved version %(number)s: every item after '%(node)s' now goes "
                                                  "to review.") % {"number": version.number, "node": node})
            if version.kept_draft is not None:
                messages.info(request, gettext("Your unpublished draft v%(draft)s was not in it: it is kept on top as "
                                               "version %(number)s, with the same change, still a draft.")
                              % {"draft": version.kept_draft.was, "number": version.kept_draft.number})
        elif action == "rollback":
            require(request.user, "promotion.request")
            created = promotion.request_rollback(request.POST.get("model") or "", "production", user=request.user,
                                                 reason=f"Drift at '{node}': {request.POST.get('message', '')}"[:2000])
            return redirect("promotion-detail", pk=created.pk)
        else:
            messages.error(request, gettext("Choose an action."))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except ValueError:
        messages.error(request, gettext("Unknown workflow."))
    return redirect("drift")
