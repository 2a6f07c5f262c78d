"""Inbound webhooks: the pages where designers set up a workflow's webhook sources, and the public
endpoint senders POST to (/hooks/<slug>/: no session, no CSRF, its own signature; throttled per
address). Thin: every change goes through workflows/inbound/webhook_sources.py, every delivery
through workflows/inbound/webhooks.py."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from workflows.access import get_workflow_for_user
from workflows.inbound import secrets, webhooks
from workflows.inbound import webhook_sources as sources
from workflows.login_throttle import client_ip
from workflows.models import WebhookSource

EDIT = "workflow.edit"


def parse_mapping_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """`field = /pointer` lines (blank lines skipped) → ({field: pointer}, problems)."""
    mapping: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, pointer = line.partition("=")
        if not sep:
            problems.append(gettext("Line %(line)s: write 'field = /pointer', e.g. 'text = /ticket/body'.")
                            % {"line": number})
            continue
        if name.strip() in mapping:
            problems.append(gettext("Line %(line)s: '%(field)s' is mapped twice.") % {"line": number,
                                                                                    "field": name.strip()})
        mapping[name.strip()] = pointer.strip()
    return mapping, problems


def mapping_lines(mapping: dict[str, str]) -> str:
    return "\n".join(f"{name} = {pointer}" for name, pointer in mapping.items())


class SourceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120,
                           help_text=_("Which system sends here, e.g. 'CRM' or 'Ticketing'."))
    mapping = forms.CharField(
        label=_("Item fields"), widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_("One line per item field: 'field = JSON pointer' into what the sender posts (RFC 6901: "
                    "/ticket/body; write ~1 for a '/' and ~0 for a '~' inside a name). With an items pointer, "
                    "pointers are read inside each element of that array."))
    items_pointer = forms.CharField(
        label=_("Items pointer (optional)"), required=False, max_length=500,
        help_text=_("Where the array of documents is when one delivery carries several, e.g. /tickets. Leave "
                    "empty when each delivery is one document."))
    idempotency_pointer = forms.CharField(
        label=_("Idempotency key pointer (optional)"), required=False, max_length=500,
        help_text=_("Where the sender's own id of the delivery is, e.g. /event/id. Leave empty to take it from the "
                    "Idempotency-Key header."))
    replay_window = forms.IntegerField(
        label=_("Replay window (seconds)"), initial=300, min_value=sources.MIN_WINDOW, max_value=sources.MAX_WINDOW,
        help_text=_("A delivery whose signed timestamp is further than this from the server's clock is refused."))

    def clean_mapping(self) -> dict[str, str]:
        mapping, problems = parse_mapping_lines(self.cleaned_data["mapping"])
        if problems:
            raise forms.ValidationError(problems)
        return mapping

    def add_problems(self, problems: dict[str, list[str]]) -> None:
        for name, said in problems.items():
            for message in said:
                self.add_error(name if name in self.fields else None, message)


def _initial(source: WebhookSource) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(source, name) for name in sources.SETTINGS}
    values["mapping"] = mapping_lines(source.mapping)
    return values


def _source(workflow: Any, source_id: int) -> WebhookSource:
    source = WebhookSource.objects.select_related("workflow", "created_by").filter(pk=source_id,
                                                                                   workflow=workflow).first()
    if source is None:
        raise Http404(gettext("No such inbound webhook."))
    return source


def hook_url(request: HttpRequest, source: WebhookSource) -> str:
    return request.build_absolute_uri(reverse("webhook-receive", args=[source.slug]))


def _secret_page(request: HttpRequest, source: WebhookSource, secret: str, created: bool) -> HttpResponse:
    url = hook_url(request, source)
    context = {"workflow": source.workflow, "source": source, "secret": secret, "created": created, "url": url,
               "curl": sources.curl_example(source, url, secret)}
    response = render(request, "webhook_sources/secret.html", context, status=201 if created else 200)
    response["Cache-Control"] = "no-store"  # the secret must not outlive this page in any cache
    return response


@login_required
@require_http_methods(["GET", "POST"])
def source_list(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, EDIT)
    form = SourceForm(request.POST or None, initial={"mapping": mapping_lines(sources.default_mapping(workflow)),
                                                     "replay_window": 300})
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            source, secret = sources.create_source(workflow, form.cleaned_data, user=request.user)
        except sources.SourceInvalid as exc:
            form.add_problems(exc.problems)
        except secrets.SecretsUnavailable as exc:
            error = str(exc)
        else:
            return _secret_page(request, source, secret, created=True)
    context = {"workflow": workflow, "form": form, "error": error,
               "sources": workflow.webhook_sources.all(), "fields": sources.required_fields(workflow),
               "has_node": any(n.get("type") == "source.webhook"
                               for n in (workflow.latest.graph.get("nodes", []) if workflow.latest else []))}
    return render(request, "webhook_sources/list.html", context, status=400 if request.method == "POST" else 200)


def _detail(request: HttpRequest, source: WebhookSource, form: SourceForm, status: int = 200,
            preview: sources.Preview | None = None, sample: str = "") -> HttpResponse:
    url = hook_url(request, source)
    context = {"workflow": source.workflow, "source": source, "form": form, "url": url,
               "curl": sources.curl_example(source, url), "deliveries": webhooks_recent(source),
               **_preview_context(preview), "sample": sample or sources.sample_payload(source),
               "fields": sources.required_fields(source.workflow)}
    return render(request, "webhook_sources/detail.html", context, status=status)


def _preview_context(preview: sources.Preview | None) -> dict[str, Any]:
    items = preview.items if preview else []
    return {"preview": preview, "preview_json": [json.dumps(i, ensure_ascii=False, indent=2) for i in items]}


def webhooks_recent(source: WebhookSource, count: int = 20) -> list[Any]:
    return list(source.deliveries.order_by("-received_at", "-id")[:count])


@login_required
@require_http_methods(["GET", "POST"])
def source_detail(request: HttpRequest, pk: int, source_id: int) -> HttpResponse:
    source = _source(get_workflow_for_user(request.user, pk, EDIT), source_id)
    if request.method == "GET":
        return _detail(request, source, SourceForm(initial=_initial(source)))
    form = SourceForm(request.POST)
    if form.is_valid():
        try:
            sources.update_source(source, form.cleaned_data, user=request.user)
        except sources.SourceInvalid as exc:
            form.add_problems(exc.problems)
        else:
            messages.success(request, gettext("Saved '%(name)s'.") % {"name": source.name})
            return redirect("webhook-source-detail", pk, source.pk)
    return _detail(request, source, form, status=400)


@login_required
@require_POST
def source_test(request: HttpRequest, pk: int, source_id: int) -> HttpResponse:
    """Read a sample payload with the settings in the form (saved or not): the items it makes, or why
    it makes none. Nothing is stored and no run starts."""
    source = _source(get_workflow_for_user(request.user, pk, EDIT), source_id)
    sample = request.POST.get("sample", "")
    form = SourceForm(request.POST if "mapping" in request.POST else None, initial=_initial(source))
    values: dict[str, Any] = {}
    problems: list[str] = []
    if form.is_bound:
        if form.is_valid():
            values = form.cleaned_data
        else:
            problems = [message for errors in form.errors.values() for message in errors]
    preview = sources.Preview(problems=problems) if problems else sources.preview(source, sample, values)
    if request.htmx:
        return render(request, "webhook_sources/_preview.html", _preview_context(preview))
    return _detail(request, source, form if form.is_bound else SourceForm(initial=_initial(source)), preview=preview,
                   sample=sample)


@login_required
@require_POST
def source_rotate(request: HttpRequest, pk: int, source_id: int) -> HttpResponse:
    source = _source(get_workflow_for_user(request.user, pk, EDIT), source_id)
    try:
        secret = sources.rotate_secret(source, user=request.user)
    except secrets.SecretsUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("webhook-source-detail", pk, source.pk)
    return _secret_page(request, source, secret, created=False)


@login_required
@require_POST
def source_enabled(request: HttpRequest, pk: int, source_id: int) -> HttpResponse:
    source = _source(get_workflow_for_user(request.user, pk, EDIT), source_id)
    enable = request.POST.get("enabled") == "on"
    if sources.set_enabled(source, enable, user=request.user):
        messages.success(request, gettext("'%(name)s' takes deliveries again.") % {"name": source.name} if enable
                         else gettext("'%(name)s' is disabled: deliveries are refused with 403.")
                         % {"name": source.name})
    return redirect("webhook-source-detail", pk, source.pk)


@csrf_exempt  # senders are other systems: the signature is their authentication, not a session
@require_POST
def receive(request: HttpRequest, slug: str) -> HttpResponse:
    answer = webhooks.receive(slug, headers=request.headers, stream=request,
                              content_length=request.META.get("CONTENT_LENGTH"), address=client_ip(request))
    return JsonResponse(answer.body, status=answer.status, headers=answer.headers,
                        json_dumps_params={"ensure_ascii": False})


urlpatterns = [
    path("hooks/<str:slug>/", receive, name="webhook-receive"),
    path("workflows/<int:pk>/webhooks/", source_list, name="webhook-source-list"),
    path("workflows/<int:pk>/webhooks/<int:source_id>/", source_detail, name="webhook-source-detail"),
    path("workflows/<int:pk>/webhooks/<int:source_id>/test/", source_test, name="webhook-source-test"),
    path("workflows/<int:pk>/webhooks/<int:source_id>/rotate/", source_rotate, name="webhook-source-rotate"),
    path("workflows/<int:pk>/webhooks/<int:source_id>/enabled/", source_enabled, name="webhook-source-enabled"),
]
