"""A previewed upload is kept on the server: "Start the run" needs no second upload, and the kept
file is only good for the session and the workflow it was previewed for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from tests.engine.helpers import make_runnable_workflow
from workflows.engine import staging
from workflows.models import Item, Run, StoredBlob, blobs

pytestmark = pytest.mark.django_db

CSV = "body,language\n" + "".join(f"Invoice {i} for mario{i}@example.it,{'it' if i % 2 else 'en'}\n" for i in range(30))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def preview(client: Client, workflow) -> str:
    r = client.post(f"/workflows/{workflow.pk}/run/",
                    {"file": SimpleUploadedFile("tickets.csv", CSV.encode()), "preview": "1"})
    assert r.status_code == 200 and "30 rows" in r.content.decode()
    token = r.context["staged"]["token"]
    assert r.context["staged"]["name"] == "tickets.csv" and r.context["staged"]["size"] == len(CSV)
    return token


def test_start_uses_the_previewed_file_and_then_forgets_it(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    operator = client_for(personas["operator"])
    token = preview(operator, workflow)
    sha = operator.session[staging.SESSION_KEY][token]["sha256"]
    assert blobs.read_bytes(sha).decode() == CSV  # in the store every web process reaches
    r = operator.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "body", "map_lang": "language"})
    assert r.status_code == 302, r.content.decode()[:500]
    run = Run.objects.get()
    assert run.items_total == 30 and run.input_name == "tickets.csv"
    assert Item.objects.get(run=run, seq=1).payload["lang"] == "it"
    assert not blobs.exists(sha)
    again = operator.post(f"/workflows/{workflow.pk}/run/", {"staged": token})
    assert again.status_code == 400 and "choose it again" in again.content.decode()
    assert Run.objects.count() == 1


def test_an_htmx_start_navigates_to_the_run(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    operator = client_for(personas["operator"])
    token = preview(operator, workflow)
    r = operator.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "body", "map_lang": "language"},
                      HTTP_HX_REQUEST="true")
    run = Run.objects.get()
    assert r.status_code == 200 and r["HX-Redirect"] == f"/runs/{run.pk}/"


def test_a_kept_file_is_worth_nothing_in_another_session_or_for_another_workflow(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    other_workflow = make_runnable_workflow(personas["designer"], name="Other")
    token = preview(client_for(personas["operator"]), workflow)
    stranger = client_for(personas["admin"])
    r = stranger.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "body", "map_lang": "language"})
    assert r.status_code == 400 and "choose it again" in r.content.decode()
    operator = client_for(personas["operator"])
    token = preview(operator, workflow)
    r = operator.post(f"/workflows/{other_workflow.pk}/run/",
                      {"staged": token, "map_text": "body", "map_lang": "language"})
    assert r.status_code == 400
    assert Run.objects.count() == 0


def test_a_bad_mapping_keeps_the_file_for_the_next_try(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    operator = client_for(personas["operator"])
    token = preview(operator, workflow)
    r = operator.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "nope", "map_lang": "language"})
    assert r.status_code == 400 and r.context["staged"]["token"] == token
    assert Run.objects.count() == 0
    r = operator.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "body", "map_lang": "language"})
    assert r.status_code == 302 and Run.objects.get().items_total == 30


def test_old_staged_files_are_swept_and_a_session_keeps_a_few(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    session: dict = {}
    first = staging.stage(session, 1, "a.csv", b"x")
    old = session[staging.SESSION_KEY][first]["sha256"]
    StoredBlob.objects.filter(pk=old).update(held_until=timezone.now() - timedelta(seconds=10))
    other: dict = {}
    staging.stage(other, 1, "z.csv", b"z")  # another session's preview sweeps what nobody holds any more
    assert not blobs.exists(old)
    tokens = [staging.stage(session, 1, f"{i}.csv", f"y{i}".encode()) for i in range(staging.MAX_PER_SESSION + 2)]
    assert set(session[staging.SESSION_KEY]) == set(tokens[-staging.MAX_PER_SESSION:])
    assert StoredBlob.objects.count() == staging.MAX_PER_SESSION + 1  # the session's five and the other's one
    assert (staging.load(session, 2, tokens[-1]) is None
            and staging.load(session, 1, tokens[-1]) == (f"{staging.MAX_PER_SESSION + 1}.csv",
                                                         f"y{staging.MAX_PER_SESSION + 1}".encode()))


def test_two_sessions_previewing_the_same_file_each_start_their_run(personas, settings, tmp_path):
    """The store keeps one copy of identical bytes: the first session to start its run must not take
    the file from under the other's preview (it did: "choose it again")."""
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    first, second = client_for(personas["operator"]), client_for(personas["designer"])
    tokens = [preview(first, workflow), preview(second, workflow)]
    shas = {c.session[staging.SESSION_KEY][t]["sha256"] for c, t in zip((first, second), tokens, strict=True)}
    assert len(shas) == 1  # one copy in the store
    for client, token in zip((first, second), tokens, strict=True):
        r = client.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "body", "map_lang": "language"})
        assert r.status_code == 302, r.content.decode()[:500]
    assert [run.items_total for run in Run.objects.order_by("pk")] == [30, 30]
    assert not blobs.exists(shas.pop())  # the last holder let it go
