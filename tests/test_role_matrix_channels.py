"""The role matrix of the channels and the data lifecycle: notifications, inbound webhooks, mailboxes,
archive, retention and erasure. Same rules as tests/test_role_matrix.py (its Row, check_row and role
sets), each request on objects of its own."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.builders import make_workflow
from tests.test_role_matrix import AUTHENTICATED, EDITORS, EVERY_ROLE, Row, check_row

# --- notifications: everyone signed in has an inbox; each request acts on a notification of the caller's own
# (another person's is a 404: tests/notifications/test_pages_and_api.py).

def notification_rows() -> list[Row]:
    return [
        Row("notification-list", "get", "/notifications/", AUTHENTICATED, api=False),
        Row("notification-bell", "get", "/notifications/bell/", AUTHENTICATED, api=False),
        Row("notification-read", "post", "/notifications/{note}/read/", AUTHENTICATED, {}, api=False),
        Row("notification-read-all", "post", "/notifications/read-all/", AUTHENTICATED, {}, api=False),
        Row("notification-preferences", "get", "/notifications/preferences/", AUTHENTICATED, api=False),
        Row("notification-preferences", "post", "/notifications/preferences/", AUTHENTICATED,
            {"language": "it", "in_app.run.failed": "on"}, api=False),
        Row("api-notifications", "get", "/api/notifications/", AUTHENTICATED),
        Row("api-notification-read", "post", "/api/notifications/{note}/read/", AUTHENTICATED, {}),
        Row("api-notifications-read-all", "post", "/api/notifications/read-all/", AUTHENTICATED, {}),
        Row("api-notification-preferences", "get", "/api/notifications/preferences/", AUTHENTICATED),
        Row("api-notification-preferences", "put", "/api/notifications/preferences/", AUTHENTICATED,
            {"language": "it"}),
    ]


@pytest.mark.parametrize("row", notification_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_notification_role_matrix(personas, row):
    from workflows.models import Notification
    from workflows.notifications import notify

    people = sorted(AUTHENTICATED)

    def request(client: Client, n: int):
        owner = personas[people[n]] if n < len(people) else personas["operator"]
        notify("run.failed", {"run": n}, key=f"matrix:{n}", to=[owner])
        path = row.path.format(note=Notification.objects.get(user=owner, key=f"matrix:{n}").pk)
        if row.method == "get":
            return client.get(path)
        if row.api:
            return getattr(client, row.method)(path, row.payload, content_type="application/json")
        return client.post(path, row.payload)

    check_row(personas, row, request)


# --- inbound webhooks: designers set them up; each request gets a workflow and a source of its own.

HOOK = {"name": "CRM", "mapping": {"text": "/ticket/body", "lang": "/ticket/lang"}}
HOOK_FORM = {"name": "CRM", "mapping": "text = /ticket/body\nlang = /ticket/lang", "replay_window": "300",
             "sample": '{"ticket": {"body": "ciao", "lang": "it"}}'}


def webhook_source_rows() -> list[Row]:
    base, api = "/workflows/{wf}/webhooks/", "/api/workflows/{wf}/webhook-sources/"
    return [
        Row("webhook-source-list", "get", base, EDITORS, api=False),
        Row("webhook-source-list", "post", base, EDITORS, {**HOOK_FORM, "name": "Other"}, api=False),
        Row("webhook-source-detail", "get", base + "{hook}/", EDITORS, api=False),
        Row("webhook-source-detail", "post", base + "{hook}/", EDITORS, HOOK_FORM, api=False),
        Row("webhook-source-test", "post", base + "{hook}/test/", EDITORS, HOOK_FORM, api=False),
        Row("webhook-source-rotate", "post", base + "{hook}/rotate/", EDITORS, {}, api=False),
        Row("webhook-source-enabled", "post", base + "{hook}/enabled/", EDITORS, {}, api=False),
        Row("api-webhook-sources", "get", api, EDITORS),
        Row("api-webhook-sources", "post", api, EDITORS, {**HOOK, "name": "Other"}),
        Row("api-webhook-source", "get", api + "{hook}/", EDITORS),
        Row("api-webhook-source", "patch", api + "{hook}/", EDITORS, {"enabled": False}),
        Row("api-webhook-source-rotate", "post", api + "{hook}/rotate/", EDITORS, {}),
        Row("api-webhook-source-test", "post", api + "{hook}/test/", EDITORS,
            {"payload": {"ticket": {"body": "ciao", "lang": "it"}}}),
    ]


@pytest.mark.parametrize("row", webhook_source_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_webhook_source_role_matrix(personas, row):
    from workflows.inbound.webhook_sources import create_source

    def request(client: Client, n: int):
        workflow = make_workflow(personas["designer"])
        source, _ = create_source(workflow, HOOK, user=personas["designer"])
        path = row.path.format(wf=workflow.pk, hook=source.pk)
        if row.method == "get":
            return client.get(path)
        if row.api:
            return getattr(client, row.method)(path, row.payload, content_type="application/json")
        return client.post(path, row.payload)

    check_row(personas, row, request)


# --- mailboxes: designers set them up; each request gets a workflow and a mailbox of its own (nothing listens on
# its port: a test connection answers quickly that it failed).

MAILBOX = {"host": "localhost", "port": 9, "security": "imaps", "username": "fatture", "password": "pw",
           "folder": "INBOX", "poll_seconds": 60}


def mailbox_rows() -> list[Row]:
    page, api = "/workflows/{wf}/mailbox/", "/api/workflows/{wf}/mailbox/"
    return [
        Row("mailbox", "get", page, EDITORS, api=False),
        Row("mailbox", "post", page, EDITORS, {**MAILBOX, "action": "save", "enabled": "on"}, api=False),
        Row("mailbox-delete", "post", page + "delete/", EDITORS, {}, api=False),
        Row("api-mailbox", "get", api, EDITORS),
        Row("api-mailbox", "put", api, EDITORS, MAILBOX),
        Row("api-mailbox", "patch", api, EDITORS, {"enabled": False}),
        Row("api-mailbox", "delete", api, EDITORS),
        Row("api-mailbox-test", "post", api + "test/", EDITORS, {}),
        Row("api-mailbox-messages", "get", api + "messages/", EDITORS),
    ]


@pytest.mark.parametrize("row", mailbox_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_mailbox_role_matrix(personas, row):
    from workflows.inbound.mailbox_setup import save_mailbox

    def request(client: Client, n: int):
        workflow = make_workflow(personas["designer"])
        values = {k: v for k, v in MAILBOX.items() if k != "password"}
        save_mailbox(workflow, {**values, "enabled": True}, user=personas["designer"], password="pw")
        path = row.path.format(wf=workflow.pk)
        if row.method in ("get", "delete"):
            return getattr(client, row.method)(path)
        if row.api:
            return getattr(client, row.method)(path, row.payload, content_type="application/json")
        return client.post(path, row.payload)

    check_row(personas, row, request)


# --- the data lifecycle: editors archive, administrators set retention, delete and erase; each request gets a
# workflow of its own (archived for a delete) and an erasure search of its own for a confirmation.

ADMINS = {"admin"}
ERASE_ID = "mario.rossi@example.it"


def lifecycle_rows() -> list[Row]:
    page, api = "/workflows/{wf}/lifecycle/", "/api/workflows/{wf}/"
    return [
        Row("workflow-lifecycle", "get", page, EDITORS, api=False),
        Row("workflow-retention", "post", page + "retention/", ADMINS, {"retention_days": "30"}, api=False),
        Row("workflow-archive", "post", page + "archive/", EDITORS, {}, api=False),
        Row("workflow-restore", "post", page + "restore/", EDITORS, {}, api=False),
        Row("workflow-delete", "post", page + "delete/", ADMINS, {"confirm_name": "Triage"}, api=False),
        Row("erasure", "get", "/erasure/", ADMINS, api=False),
        Row("erasure", "post", "/erasure/", ADMINS, {"action": "search", "identifier": ERASE_ID}, api=False),
        Row("api-workflow-retention", "get", api + "retention/", EVERY_ROLE),
        Row("api-workflow-retention", "put", api + "retention/", ADMINS, {"retention_days": 30}),
        Row("api-workflow-retention", "patch", api + "retention/", ADMINS, {"retention_days": None}),
        Row("api-workflow-archive", "post", api + "archive/", EDITORS, {}),
        Row("api-workflow-restore", "post", api + "restore/", EDITORS, {}),
        Row("workflow-detail", "delete", api, ADMINS),
        Row("api-erasure", "post", "/api/erasure/", ADMINS, {"identifier": ERASE_ID}),
        Row("api-erasure-confirm", "post", "/api/erasure/confirm/", ADMINS,
            {"identifier": ERASE_ID, "token": "{token}"}),
    ]


@pytest.mark.parametrize("row", lifecycle_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_lifecycle_role_matrix(personas, row):
    from workflows.lifecycle import archive, erasure

    def request(client: Client, n: int):
        workflow = make_workflow(personas["designer"])
        if row.name in ("workflow-delete", "workflow-detail", "workflow-restore", "api-workflow-restore"):
            archive.archive(workflow, user=personas["designer"])
        payload = dict(row.payload or {})
        if payload.get("token") == "{token}":
            payload["token"] = erasure.search(ERASE_ID, user=personas["admin"]).token
        path = row.path.format(wf=workflow.pk)
        if row.method in ("get", "delete"):
            return getattr(client, row.method)(path)
        if row.api:
            return getattr(client, row.method)(path, payload, content_type="application/json")
        return client.post(path, payload)

    check_row(personas, row, request)
