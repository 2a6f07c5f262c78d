"""A workflow's mailbox page: set it up (the password never shown back, only whether one is stored),
test the connection with what is typed, see its last poll and error and the messages it took or
dead-lettered, remove it. Only who may design the workflow (`workflow.edit`); every change goes
through workflows/inbound/mailbox_setup.py, as the API's do."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from workflows.access import get_workflow_for_user
from workflows.inbound import mailbox_setup, secrets
from workflows.models import Mailbox, MailboxMessage

CAPABILITY = "workflow.edit"


class MailboxForm(forms.Form):
    host = forms.CharField(label=_("Mail server (IMAP)"), max_length=253,
                           help_text=_("Host name or address, e.g. imap.example.it."))
    security = forms.ChoiceField(label=_("Security"), choices=[
        (Mailbox.IMAPS, _("IMAPS: TLS from the start (usually port 993)")),
        (Mailbox.STARTTLS, _("STARTTLS: TLS before the login (usually port 143)"))],
        help_text=_("The password is never sent without TLS."))
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=993)
    username = forms.CharField(label=_("Username"), max_length=255)
    password = forms.CharField(label=_("Password"), max_length=1000, required=False, strip=False,
                               widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    folder = forms.CharField(label=_("Folder to read"), max_length=255, initial="INBOX")
    processed_folder = forms.CharField(label=_("Move taken messages to"), max_length=255, required=False,
                                       help_text=_("A folder that exists on the server. Leave blank to flag taken "
                                                   "messages as read and leave them where they are."))
    poll_seconds = forms.IntegerField(label=_("Look for new messages every (seconds)"), initial=60,
                                      min_value=mailbox_setup.MIN_POLL_SECONDS,
                                      max_value=mailbox_setup.MAX_POLL_SECONDS)
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True,
                                 help_text=_("A disabled mailbox keeps its settings and is not read."))

    def __init__(self, *args: Any, password_set: bool = False, tested: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.password_set = password_set or tested
        self.fields["password"].help_text = (
            _("The password you just tested is kept for saving: leave blank to use it.") if tested
            else _("A password is stored. Leave blank to keep it; type a new one to replace it.") if password_set
            else _("Stored encrypted; never shown again."))

    def clean_host(self) -> str:
        problem = mailbox_setup.host_problem(self.cleaned_data["host"])
        if problem:
            raise forms.ValidationError(problem)
        return self.cleaned_data["host"].strip()

    def _text(self, name: str, what: str) -> str:
        problem = mailbox_setup.text_problem(self.cleaned_data[name], what)
        if problem:
            raise forms.ValidationError(problem)
        return self.cleaned_data[name]

    def clean_username(self) -> str:
        return self._text("username", "username")

    def clean_password(self) -> str:
        return self._text("password", "password")

    def clean_folder(self) -> str:
        return self._text("folder", "folder")

    def clean_processed_folder(self) -> str:
        return self._text("processed_folder", "folder")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.password_set and not cleaned.get("password") and "password" not in self.errors:
            self.add_error("password", gettext("Enter the mailbox's password."))
        return cleaned

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in mailbox_setup.FIELDS}


# A password typed for 'Test connection' is not shown back (a password field never is), so the save
# that follows would find the field empty: it is kept encrypted in the tester's session for that save.
TESTED_KEY = "mailbox-tested-password:%s"


def _remember_tested(request: HttpRequest, workflow_pk: int, password: str) -> None:
    try:
        request.session[TESTED_KEY % workflow_pk] = secrets.encrypt(password)
    except secrets.SecretsUnavailable:
        pass  # nothing can be kept encrypted: the save asks for the password again


def _tested_password(request: HttpRequest, workflow_pk: int) -> str | None:
    token = request.session.pop(TESTED_KEY % workflow_pk, None)
    try:
        return secrets.decrypt(token) if token else None
    except Exception:  # a key rotated since, or a tampered session: ask again
        return None


def _initial(mailbox: Mailbox | None) -> dict[str, Any]:
    return {name: getattr(mailbox, name) for name in mailbox_setup.FIELDS} if mailbox else {}


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_page(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, CAPABILITY)
    mailbox = Mailbox.objects.select_related("created_by").filter(workflow=workflow).first()
    form = MailboxForm(request.POST or None, initial=_initial(mailbox), password_set=mailbox is not None,
                       tested=TESTED_KEY % workflow.pk in request.session)
    outcome = None
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 400
        elif request.POST.get("action") == "test":
            typed = form.cleaned_data["password"] or None
            if typed is None and mailbox is None:
                typed = _tested_password(request, workflow.pk)
            outcome = mailbox_setup.check_connection(workflow, user=request.user, mailbox=mailbox,
                                                     values=form.values(), password=typed)
            if typed and outcome.ok:
                _remember_tested(request, workflow.pk, typed)
                form = MailboxForm(request.POST, initial=_initial(mailbox), password_set=True, tested=True)
                form.is_valid()
        else:
            kept = _tested_password(request, workflow.pk)
            try:
                mailbox_setup.save_mailbox(workflow, form.values(), user=request.user,
                                           password=form.cleaned_data["password"] or kept)
            except secrets.SecretsUnavailable as exc:
                form.add_error("password", str(exc))
                status = 400
            else:
                messages.success(request, gettext("Mailbox saved. The workers read it within %(seconds)s seconds.")
                                 % {"seconds": form.cleaned_data["poll_seconds"]})
                return redirect("mailbox", pk=workflow.pk)
    rows = list(MailboxMessage.objects.filter(mailbox=mailbox).order_by("-id")[:20]) if mailbox else []
    for row in rows:
        row.status_text = mailbox_setup.STATUS_TEXTS.get(row.status, row.status)
        row.reason = mailbox_setup.reason_text(row) if row.status == MailboxMessage.DEAD else ""
    context = {"workflow": workflow, "mailbox": mailbox, "form": form, "outcome": outcome, "rows": rows,
               "mail_source": mailbox_setup.has_mail_source(workflow),
               "last_error": mailbox_setup.last_error_text(mailbox) if mailbox else ""}
    return render(request, "mailboxes/mailbox.html", context, status=status)


@login_required
@require_http_methods(["POST"])
def mailbox_delete(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, CAPABILITY)
    mailbox = Mailbox.objects.filter(workflow=workflow).first()
    if mailbox is None:
        raise Http404(gettext("This workflow has no mailbox."))
    mailbox_setup.delete_mailbox(mailbox, user=request.user)
    messages.success(request, gettext("Mailbox removed: no more messages are read for '%(name)s'.")
                     % {"name": workflow.name})
    return redirect("mailbox", pk=workflow.pk)


urlpatterns = [
    path("workflows/<int:pk>/mailbox/", mailbox_page, name="mailbox"),
    path("workflows/<int:pk>/mailbox/delete/", mailbox_delete, name="mailbox-delete"),
]
