"""Session fixation and logout, through the real login and logout views."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from tests.builders import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def session_key(client: Client) -> str | None:
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie and cookie.value else None


def log_in(client: Client, username: str) -> None:
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]


def test_a_session_planted_before_login_is_replaced_by_a_new_key():
    designer = make_user("designer", "designer")
    planted = SessionStore()  # e.g. an attacker's own session, its cookie set in the victim's browser
    planted["note"] = "set before login"
    planted.save()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key
    log_in(client, "designer")
    assert session_key(client) not in (None, planted.session_key)
    assert not SessionStore().exists(planted.session_key)  # the old key no longer names any session
    assert client.session["_auth_user_id"] == str(designer.pk)
    assert client.get("/").status_code == 200


def test_a_made_up_session_key_is_never_adopted():
    make_user("designer", "designer")
    client = Client()
    invented = "attackerchosen" + "0" * 18
    client.cookies[settings.SESSION_COOKIE_NAME] = invented
    log_in(client, "designer")
    assert session_key(client) != invented and not SessionStore().exists(invented)


def test_logging_in_as_someone_else_changes_the_key_again():
    make_user("designer", "designer")
    make_user("operator", "operator")
    client = Client()
    log_in(client, "designer")
    first = session_key(client)
    log_in(client, "operator")
    assert session_key(client) != first and not SessionStore().exists(first)


def test_logout_flushes_the_session():
    make_user("designer", "designer")
    client = Client()
    log_in(client, "designer")
    key = session_key(client)
    assert client.post("/accounts/logout/").status_code == 302
    assert not SessionStore().exists(key)
    assert session_key(client) is None  # the cookie is deleted
    # Replaying the old cookie gets nothing.
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    response = replay.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_logout_is_post_only():
    make_user("designer", "designer")
    client = Client()
    log_in(client, "designer")
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200
