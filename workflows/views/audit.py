"""The audit log: browse and filter the chain, and verify it (the first broken link is shown)."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from workflows import audit_texts
from workflows.models import AuditEntry
from workflows.models.audit import verify_chain_for
from workflows.roles import require

PAGE = 50


class BadFilter(ValueError):
    """A filter the log cannot apply; the message says how to write it."""


def filtered(request: HttpRequest):
    entries = AuditEntry.objects.order_by("-id")
    filters = {k: (request.GET.get(k) or "").strip() for k in ("action", "actor", "object", "since", "until")}
    if filters["action"]:
        entries = entries.filter(action__startswith=filters["action"])
    if filters["actor"]:
        entries = entries.filter(actor_name=filters["actor"])
    if filters["object"]:
        kind, _, pk = filters["object"].partition(":")
        entries = entries.filter(object_type__icontains=kind)
        if pk:
            entries = entries.filter(object_id=pk)
    for key, lookup in (("since", "at__date__gte"), ("until", "at__date__lte")):
        if filters[key]:
            try:
                day = date.fromisoformat(filters[key])
            except ValueError:
                raise BadFilter(gettext("'%(filter)s' must be a date written YYYY-MM-DD, like 2025-03-31.")
                                % {"filter": key}) from None
            entries = entries.filter(**{lookup: day})
    return entries, filters


def _page(request: HttpRequest, verification: dict | None = None, status: int = 200) -> HttpResponse:
    try:
        entries, filters = filtered(request)
    except BadFilter as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    page = Paginator(entries, PAGE).get_page(request.GET.get("page"))
    for entry in page:
        entry.title, entry.data_text = audit_texts.title(entry.action), audit_texts.data_text(entry.data)
    families = {a.split(".")[0] for a in AuditEntry.objects.values_list("action", flat=True).distinct()[:500]}
    actions = sorted(((f, audit_texts.family_title(f)) for f in families), key=lambda pair: pair[1].lower())
    context = {"page": page, "filters": filters, "actions": actions, "verification": verification,
               "query": "&".join(f"{k}={v}" for k, v in filters.items() if v)}
    return render(request, "audit/log.html", context, status=status)


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    require(request.user, "audit.view")
    return _page(request)


@login_required
@require_http_methods(["POST"])
def audit_verify(request: HttpRequest) -> HttpResponse:
    require(request.user, "audit.view")
    count, broken, why = verify_chain_for(request.user)
    verification = {"count": count, "broken": broken, "why": why, "ok": not why}
    return _page(request, verification)
