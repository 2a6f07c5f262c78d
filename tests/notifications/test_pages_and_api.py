"""The inbox, the bell, the preferences page and the API: each person sees and marks only their own
notifications (404 for anyone else's), in their language; bad input is refused whole."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.notifications.test_digest import ITALIAN
from tests.test_i18n_python import write_mo
from workflows.models import Notification, NotificationPreference, NotificationProfile
from workflows.models import notifications as kinds
from workflows.notifications import notify

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pack_ready(user, n: int) -> Notification:
    notify(kinds.PACK_READY, {"workflow": f"Line {n}", "week": "2026-W14"}, key=f"pack:{n}",
           link=f"/workflows/{n}/kpis/packs/2026-W14/", to=[user])
    return Notification.objects.get(user=user, key=f"pack:{n}")


def test_the_bell_counts_the_unread_on_every_page_and_on_its_poll(personas):
    owner = personas["business_owner"]
    client = client_of(owner)
    assert 'data-count="0"' in client.get("/").content.decode()
    pack_ready(owner, 1)
    pack_ready(owner, 2)
    pack_ready(personas["admin"], 3)  # someone else's
    page = client.get("/").content.decode()
    assert 'id="notification-bell"' in page and 'data-count="2"' in page and '<span class="bell-count">2</span>' in page
    bell = client.get("/notifications/bell/").content.decode()
    assert 'data-count="2"' in bell and "2 unread notifications" in bell
    assert Client().get("/notifications/bell/").status_code == 302  # signed out: the login page


def test_the_inbox_lists_ones_own_and_a_click_marks_read_and_follows_the_link(personas):
    owner = personas["business_owner"]
    mine = pack_ready(owner, 1)
    pack_ready(personas["admin"], 2)
    client = client_of(owner)
    page = client.get("/notifications/").content.decode()
    assert "The weekly pack of Line 1 for 2026-W14 is ready to sign." in page and "Line 2" not in page
    response = client.post(f"/notifications/{mine.pk}/read/", {"open": "1"})
    assert response.status_code == 302 and response["Location"] == "/workflows/1/kpis/packs/2026-W14/"
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert 'data-count="0"' in client.get("/notifications/").content.decode()


def test_nobody_reads_or_marks_another_persons_notification(personas, api):
    theirs = pack_ready(personas["admin"], 1)
    client = client_of(personas["business_owner"])
    assert client.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    assert api(personas["business_owner"]).post(f"/api/notifications/{theirs.pk}/read/").status_code == 404
    assert client.post("/notifications/read-all/").status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert api().get("/api/notifications/").status_code == 401


def test_mark_all_read(personas):
    owner = personas["business_owner"]
    for n in range(3):
        pack_ready(owner, n)
    client = client_of(owner)
    response = client.post("/notifications/read-all/", follow=True)
    assert "3 notifications marked as read." in response.content.decode()
    assert not Notification.objects.filter(user=owner, read_at__isnull=True).exists()


def test_the_inbox_speaks_the_readers_language(personas, settings, tmp_path):
    write_mo(tmp_path / "it" / "LC_MESSAGES" / "django.mo", ITALIAN)
    settings.LOCALE_PATHS = [tmp_path]
    owner = personas["business_owner"]
    pack_ready(owner, 1)
    page = client_of(owner).get("/notifications/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Il pacchetto settimanale di Line 1 per la 2026-W14 è pronto da firmare." in page
    data = client_of(owner).get("/api/notifications/", HTTP_ACCEPT_LANGUAGE="it").json()
    assert data["results"][0]["text"] == "Il pacchetto settimanale di Line 1 per la 2026-W14 è pronto da firmare."


def test_the_preferences_page_saves_every_kind_and_the_email_language(personas, settings):
    settings.EMAIL_HOST = ""
    owner = personas["business_owner"]
    client = client_of(owner)
    page = client.get("/notifications/preferences/").content.decode()
    assert "Weekly pack ready to sign" in page and 'id="no-mail"' in page
    form = {f"in_app.{kind}": "on" for kind in kinds.KINDS} | {f"email.{kind}": "on" for kind in kinds.KINDS}
    del form[f"in_app.{kinds.PACK_READY}"]
    del form[f"email.{kinds.RUN_FAILED}"]
    response = client.post("/notifications/preferences/", {**form, "language": "it"})
    assert response.status_code == 302
    chosen = {p.kind: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user=owner)}
    assert chosen[kinds.PACK_READY] == (False, True) and chosen[kinds.RUN_FAILED] == (True, False)
    assert NotificationProfile.objects.get(user=owner).language == "it"
    assert notify(kinds.PACK_READY, {}, key="pack:1", to=[owner]) == 0  # no e-mail here, and not wanted in the app
    assert notify(kinds.RUN_FAILED, {}, key="run:1", to=[owner]) == 1
    assert not Notification.objects.filter(user=owner, kind=kinds.PACK_READY).exists()


def test_a_bad_language_on_the_page_is_refused_and_nothing_is_saved(personas):
    owner = personas["business_owner"]
    response = client_of(owner).post("/notifications/preferences/", {"language": "klingon"})
    assert response.status_code == 400 and "The language must be one of it, en." in response.content.decode()
    assert not NotificationPreference.objects.exists() and not NotificationProfile.objects.exists()


def test_switching_the_language_in_the_top_bar_sets_the_emails_language(personas):
    owner = personas["business_owner"]
    client = client_of(owner)
    response = client.post("/i18n/setlang/", {"language": "it", "next": "/"})
    assert response.status_code == 302 and response.cookies["django_language"].value == "it"
    assert NotificationProfile.objects.get(user=owner).language == "it"
    signed_out = Client().post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert signed_out.status_code == 302 and NotificationProfile.objects.count() == 1  # the cookie only


# --- the API ----------------------------------------------------------------------------------------------

def test_the_api_lists_filters_and_pages_ones_own(personas, api):
    owner = personas["business_owner"]
    notes = [pack_ready(owner, n) for n in range(5)]
    pack_ready(personas["admin"], 9)
    client = api(owner)
    client.post(f"/api/notifications/{notes[0].pk}/read/")
    data = client.get("/api/notifications/?limit=2").json()
    assert data["count"] == 5 and data["unread"] == 4 and len(data["results"]) == 2
    assert data["results"][0]["id"] == notes[4].pk  # newest first
    assert data["results"][0]["link"] == "/workflows/4/kpis/packs/2026-W14/"
    unread = client.get("/api/notifications/?unread=true&limit=200").json()
    assert unread["count"] == 4 and notes[0].pk not in [r["id"] for r in unread["results"]]
    bad = client.get("/api/notifications/?limit=0&offset=-1")
    assert bad.status_code == 400 and "limit" in bad.json() and "offset" in bad.json()


def test_the_api_marks_one_and_all_read(personas, api):
    owner = personas["business_owner"]
    first, _ = pack_ready(owner, 1), pack_ready(owner, 2)
    client = api(owner)
    one = client.post(f"/api/notifications/{first.pk}/read/")
    assert one.status_code == 200 and one.json()["read"] is True and one.json()["read_at"]
    assert client.post("/api/notifications/read-all/").json() == {"marked": 1}
    assert client.post("/api/notifications/read-all/").json() == {"marked": 0}
    assert client.post("/api/notifications/999999999/read/").status_code == 404


def test_the_api_reads_and_writes_preferences_all_or_nothing(personas, api):
    owner = personas["business_owner"]
    client = api(owner)
    got = client.get("/api/notifications/preferences/").json()
    assert got["language"] == "en" and [k["kind"] for k in got["kinds"]] == list(kinds.KINDS)
    assert all(k["in_app"] and k["email"] for k in got["kinds"])
    put = client.put("/api/notifications/preferences/",
                     {"language": "it", "kinds": [{"kind": kinds.DRIFT, "email": False}]}, format="json")
    assert put.status_code == 200
    drift = next(k for k in put.json()["kinds"] if k["kind"] == kinds.DRIFT)
    assert (drift["in_app"], drift["email"], put.json()["language"]) == (True, False, "it")

    refused = client.put("/api/notifications/preferences/",
                         {"language": "de", "kinds": [{"kind": kinds.RUN_FAILED, "email": False},
                                                      {"kind": "everything", "email": "maybe"}]}, format="json")
    assert refused.status_code == 400
    body = refused.json()
    assert "language" in body and "kinds" in body and "detail" in body
    assert not NotificationPreference.objects.filter(kind=kinds.RUN_FAILED).exists()
    assert NotificationProfile.objects.get(user=owner).language == "it"
    assert client.put("/api/notifications/preferences/", ["not", "an", "object"], format="json").status_code == 400


def test_the_emails_language_follows_the_browsers_at_the_first_login(personas):
    # An Italian browser gets Italian pages: the e-mails must not stay English until the person happens
    # to find the switcher. A language the person chose later is never overwritten by a login.
    from tests.builders import PASSWORD

    owner = personas["business_owner"]
    client = Client(HTTP_ACCEPT_LANGUAGE="it-IT,it;q=0.9,en;q=0.5")
    response = client.post("/accounts/login/", {"username": owner.username, "password": PASSWORD})
    assert response.status_code == 302
    assert NotificationProfile.objects.get(user=owner).language == "it"
    NotificationProfile.objects.filter(user=owner).update(language="en")
    Client(HTTP_ACCEPT_LANGUAGE="it").post("/accounts/login/", {"username": owner.username, "password": PASSWORD})
    assert NotificationProfile.objects.get(user=owner).language == "en"
