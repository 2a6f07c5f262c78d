"""REST API for a workflow's mailbox: read, create or replace (PUT), change (PATCH), remove, test the
connection, and the ledger of its messages. Same rules as the page (workflows/views/mailboxes.py):
only who may design the workflow (`workflow.edit`) may see or change it, through
workflows/inbound/mailbox_setup.py. The password is write-only: answers say only `password_set`."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user
from workflows.inbound import mailbox_setup, secrets
from workflows.models import Mailbox, MailboxMessage

CAPABILITY = "workflow.edit"
TAGS = ["mailboxes"]


class MailboxSerializer(serializers.ModelSerializer):
    port = serializers.IntegerField(min_value=1, max_value=65535, default=993)
    poll_seconds = serializers.IntegerField(min_value=mailbox_setup.MIN_POLL_SECONDS,
                                            max_value=mailbox_setup.MAX_POLL_SECONDS, default=60,
                                            help_text="How often the workers look for new messages.")
    password = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=1000,
                                     trim_whitespace=False, style={"input_type": "password"},
                                     help_text="Needed to create a mailbox; left out (or blank), the stored one "
                                               "is kept. Never answered back.")
    password_set = serializers.SerializerMethodField(help_text="Whether a password is stored (never the password).")
    mail_source = serializers.SerializerMethodField(
        help_text="Whether the workflow's latest version has a Mailbox source node (without it nothing is read).")
    last_error_text = serializers.SerializerMethodField(help_text="What the last poll or test ran into, and what "
                                                                  "to fix; empty when it worked.")
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Mailbox
        fields = ["host", "port", "security", "username", "password", "password_set", "folder", "processed_folder",
                  "poll_seconds", "enabled", "mail_source", "last_poll_at", "next_poll_at", "last_error_code",
                  "last_error", "last_error_text", "last_error_at", "created_by", "created_at", "updated_at"]
        read_only_fields = ["last_poll_at", "next_poll_at", "last_error_code", "last_error", "last_error_at",
                            "created_at", "updated_at"]

    def get_password_set(self, obj: Mailbox) -> bool:
        return bool(obj.password_encrypted)

    def get_mail_source(self, obj: Mailbox) -> bool:
        return mailbox_setup.has_mail_source(obj.workflow)

    def get_last_error_text(self, obj: Mailbox) -> str:
        return mailbox_setup.last_error_text(obj)

    def get_created_by(self, obj: Mailbox) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    def validate_host(self, value: str) -> str:
        problem = mailbox_setup.host_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value.strip()

    def _text(self, value: str, what: str) -> str:
        problem = mailbox_setup.text_problem(value, what)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_username(self, value: str) -> str:
        return self._text(value, "username")

    def validate_password(self, value: str) -> str:
        return self._text(value, "password")

    def validate_folder(self, value: str) -> str:
        return self._text(value, "folder")

    def validate_processed_folder(self, value: str) -> str:
        return self._text(value, "folder")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": [gettext("Enter the mailbox's password.")]})
        return attrs


class MessageSerializer(serializers.ModelSerializer):
    reason = serializers.SerializerMethodField(help_text="Why it was dead-lettered, in the reader's language.")

    class Meta:
        model = MailboxMessage
        fields = ["id", "message_key", "subject", "sender", "status", "reason_code", "reason", "attempts", "run",
                  "item_ids", "uid", "uidvalidity", "created_at", "updated_at"]

    def get_reason(self, obj: MailboxMessage) -> str:
        return mailbox_setup.reason_text(obj) if obj.status == MailboxMessage.DEAD else ""


def _mailbox(workflow: Any) -> Mailbox:
    mailbox = Mailbox.objects.select_related("workflow", "created_by").filter(workflow=workflow).first()
    if mailbox is None:
        raise Http404(gettext("This workflow has no mailbox."))
    return mailbox


@extend_schema(methods=["GET"], tags=TAGS, responses=MailboxSerializer)
@extend_schema(methods=["PUT", "PATCH"], tags=TAGS, request=MailboxSerializer, responses=MailboxSerializer)
@extend_schema(methods=["DELETE"], tags=TAGS, responses={204: None})
@api_view(["GET", "PUT", "PATCH", "DELETE"])
def mailbox_detail(request: Request, pk: int) -> Response:
    """The workflow's mailbox (IMAP over TLS), polled by the workers; each new message becomes items of
    the workflow's live run through its Mailbox source. PUT creates or replaces it (a new one needs
    `password`), PATCH changes some fields, DELETE removes it (its ledger with it)."""
    workflow = get_workflow_for_user(request.user, pk, CAPABILITY)
    if request.method == "GET":
        return Response(MailboxSerializer(_mailbox(workflow)).data)
    if request.method == "DELETE":
        mailbox_setup.delete_mailbox(_mailbox(workflow), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
    instance = Mailbox.objects.filter(workflow=workflow).first()
    if instance is None and request.method == "PATCH":
        raise Http404(gettext("This workflow has no mailbox: create it with PUT."))
    serializer = MailboxSerializer(instance, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
    password = values.pop("password", "") or None
    try:
        saved = mailbox_setup.save_mailbox(workflow, values, user=request.user, password=password)
    except secrets.SecretsUnavailable as exc:
        raise serializers.ValidationError({"password": [str(exc)]}) from None
    return Response(MailboxSerializer(_mailbox(saved.workflow)).data,
                    status=status.HTTP_201_CREATED if instance is None else status.HTTP_200_OK)


@extend_schema(tags=TAGS, request=None, responses=inline_serializer("MailboxTest", {
    "ok": serializers.BooleanField(),
    "stage": serializers.CharField(help_text="The step that failed: dns, connect, timeout, tls, login, folder, "
                                             "processed_folder, protocol or credentials; empty when it worked."),
    "message": serializers.CharField(help_text="What happened, and what to fix."),
    "unseen": serializers.IntegerField(allow_null=True, help_text="Unseen messages waiting, when it worked."),
}))
@api_view(["POST"])
def mailbox_test(request: Request, pk: int) -> Response:
    """Test the saved mailbox: connect, log in, open the folders and count the unseen messages.
    Nothing is read or flagged; the outcome is kept on the mailbox like a poll's."""
    workflow = get_workflow_for_user(request.user, pk, CAPABILITY)
    outcome = mailbox_setup.check_connection(workflow, user=request.user, mailbox=_mailbox(workflow))
    return Response({"ok": outcome.ok, "stage": outcome.stage, "message": outcome.message, "unseen": outcome.unseen})


@extend_schema(tags=TAGS, responses=MessageSerializer(many=True))
@api_view(["GET"])
def mailbox_messages(request: Request, pk: int) -> Response:
    """The mailbox's latest 100 messages: taken (with the run and items they became) or dead-lettered
    (with the reason)."""
    workflow = get_workflow_for_user(request.user, pk, CAPABILITY)
    rows = MailboxMessage.objects.filter(mailbox=_mailbox(workflow)).order_by("-id")[:100]
    return Response(MessageSerializer(rows, many=True).data)


urlpatterns = [
    path("workflows/<int:pk>/mailbox/", mailbox_detail, name="api-mailbox"),
    path("workflows/<int:pk>/mailbox/test/", mailbox_test, name="api-mailbox-test"),
    path("workflows/<int:pk>/mailbox/messages/", mailbox_messages, name="api-mailbox-messages"),
]
