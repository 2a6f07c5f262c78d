"""Where documents may go: large-model endpoints, webhook destinations and each workflow's
data-residency policy. Every role reads the list; only `endpoint.manage` changes anything, through
workflows/governance/endpoints.py, which the API uses too."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from workflows.access import get_workflow_for_user, visible_workflows
from workflows.formats import DecimalInput, LocaleDecimalField, parse_decimal
from workflows.governance import endpoints as governance
from workflows.models import LLMEndpoint, WebhookDestination
from workflows.roles import can, require

LOCATION_LABELS = {"location": _("Location"), "region": _("Region"), "enabled": _("Enabled"), "name": _("Name")}
LOCATION_HELP = {"region": _("Where the data goes, e.g. 'local', 'EU (Milan)', 'US'."),
                 "enabled": _("A disabled one stays registered but no run may use it."),
                 "name": _("Lower-case letters, digits and hyphens; workflows refer to it by this name.")}


class _WhereForm(forms.ModelForm):
    url_field = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].choices = [(LLMEndpoint.ON_PREMISE, _("On premise")),
                                           (LLMEndpoint.EXTERNAL, _("External"))]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        problem = governance.name_problem(name)
        if problem:
            raise forms.ValidationError(problem)
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        url = cleaned.get(self.url_field)
        if url:
            problem = governance.url_problem(cleaned.get("location", ""), url)
            if problem:
                self.add_error(self.url_field, problem)
        return cleaned


CAPS = ("monthly_budget_tokens", "monthly_budget_eur")


class WholeNumberField(forms.IntegerField):
    """A count typed the way people write it ("1.000.000" in Italian, "1,000,000" in English), whole."""

    widget = DecimalInput

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        try:
            number = parse_decimal(value)
        except ValueError:
            number = None
        if number is None or number != number.to_integral_value():
            raise forms.ValidationError(gettext("Enter a whole number, such as 1000000."), code="invalid")
        return int(number)


class EndpointForm(_WhereForm):
    url_field = "base_url"
    base_url = forms.URLField(assume_scheme="https", max_length=200, label=_("Base URL"),
                              help_text=_("Up to and including /v1, e.g. http://127.0.0.1:8088/v1"))

    class Meta:
        model = LLMEndpoint
        fields = list(governance.ENDPOINT_FIELDS)
        field_classes = {"price_in_per_1k": LocaleDecimalField, "price_out_per_1k": LocaleDecimalField,
                         "monthly_budget_tokens": WholeNumberField, "monthly_budget_eur": LocaleDecimalField}
        labels = {**LOCATION_LABELS, "model_name": _("Model name"),
                  "api_key_env": _("Environment variable holding the API key"),
                  "price_in_per_1k": _("Price of input (€ per 1k tokens)"),
                  "price_out_per_1k": _("Price of output (€ per 1k tokens)"),
                  "monthly_budget_tokens": _("Monthly cap in tokens"),
                  "monthly_budget_eur": _("Monthly cap in euros")}
        help_texts = {**LOCATION_HELP,
                      "api_key_env": _("The key itself stays in the server's environment and is never shown; "
                                       "to replace it, change the variable or name another one."),
                      "monthly_budget_tokens": _("What all runs together may spend on this endpoint in a calendar "
                                                 "month; 0 for no cap. Once spent, documents go to a person."),
                      "monthly_budget_eur": _("The same cap in euros, e.g. 28,50; 0 for no cap.")}
        error_messages = {"name": {"unique": _("An endpoint with this name already exists.")}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in CAPS:
            self.fields[name].required = False  # empty: no cap, as 0

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("price_in_per_1k", "price_out_per_1k"):
            if cleaned.get(name) is not None and cleaned[name] < 0:
                self.add_error(name, gettext("A price cannot be negative."))
        for name in CAPS:
            problem = governance.cap_problem(cleaned.get(name))
            if problem:
                self.add_error(name, problem)
            elif name in cleaned and cleaned[name] is None:
                cleaned[name] = 0
        return cleaned


class DestinationForm(_WhereForm):
    url_field = "url"
    url = forms.URLField(assume_scheme="https", max_length=500, label=_("URL"),
                         help_text=_("Results are POSTed here. External destinations must use https and resolve "
                                     "to public addresses."))

    class Meta:
        model = WebhookDestination
        fields = list(governance.DESTINATION_FIELDS)
        labels = LOCATION_LABELS
        help_texts = LOCATION_HELP
        error_messages = {"name": {"unique": _("A destination with this name already exists.")}}


KINDS: dict[str, tuple[type, type[forms.ModelForm], Any]] = {
    "llm": (LLMEndpoint, EndpointForm, governance.save_endpoint),
    "webhook": (WebhookDestination, DestinationForm, governance.save_destination),
}


@login_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "endpoint.view")
    used_by_endpoint, used_by_destination = governance.usage(visible_workflows(request.user))
    endpoints = list(LLMEndpoint.objects.all())
    for endpoint in endpoints:
        endpoint.used_by = used_by_endpoint.get(endpoint.name, [])
        endpoint.key_set = governance.key_is_set(endpoint)
    destinations = list(WebhookDestination.objects.all())
    for destination in destinations:
        destination.used_by = used_by_destination.get(destination.name, [])
    context = {"endpoints": endpoints, "destinations": destinations,
               "workflows": visible_workflows(request.user).filter(archived=False).order_by("name"),
               "can_manage": can(request.user, "endpoint.manage")}
    return render(request, "registry/endpoints.html", context)


def _edit(request: HttpRequest, kind: str, name: str | None) -> HttpResponse:
    require(request.user, "endpoint.manage")
    model, form_class, save = KINDS[kind]
    instance = None
    if name is not None:
        instance = model.objects.filter(name=name).first()
        if instance is None:
            raise Http404(gettext("Nothing registered under that name."))
    form = form_class(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        saved = save(model.objects.get(pk=instance.pk) if instance else None, form.cleaned_data, user=request.user)
        messages.success(request, gettext("Saved '%(name)s'.") % {"name": saved.name})
        return redirect("endpoint-list")
    context = {"form": form, "kind": kind, "instance": instance,
               "key_set": governance.key_is_set(instance) if kind == "llm" and instance else None}
    return render(request, "registry/endpoint_form.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_create(request: HttpRequest, kind: str) -> HttpResponse:
    return _edit(request, kind, None)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, kind: str, name: str) -> HttpResponse:
    return _edit(request, kind, name)


@login_required
@require_http_methods(["POST"])
def residency_policy(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "endpoint.manage")
    workflow = get_workflow_for_user(request.user, pk, "endpoint.manage")
    if workflow.archived:
        raise Http404
    # Unticked checkboxes are not sent: the form posts both fields, so absent means off.
    values = {name: request.POST.get(name) == "on" for name in governance.POLICY_FIELDS}
    governance.save_policy(workflow, values, user=request.user)
    messages.success(request, gettext("Data-residency policy of '%(name)s' saved.") % {"name": workflow.name})
    return redirect("endpoint-list")
