"""Login throttling (workflows/login_throttle.py) on the login page and the API token endpoint."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.builders import PASSWORD, make_user
from workflows.models import AuditEntry
from workflows.models.audit import verify_chain

pytestmark = pytest.mark.django_db
WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def limits(settings):
    """The defaults, whatever the environment says. The cache is the configured one (Redis when REDIS_URL is
    set) under a key prefix of this test's own (tests/conftest.py)."""
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 50
    settings.LOGIN_FAILURE_WINDOW = 900
    settings.CLIENT_IP_HEADER = ""


@pytest.fixture
def counted_password_checks(monkeypatch):
    """How often the login form asked the authentication backends about a password."""
    from django.contrib.auth import authenticate, forms

    calls = []

    def counting(request=None, **credentials):
        calls.append(credentials.get("username"))
        return authenticate(request, **credentials)

    monkeypatch.setattr(forms, "authenticate", counting)
    return calls


def log_in(client: Client, username: str, password: str, ip: str = "10.0.0.1", **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_lock_that_username_from_that_address_even_for_the_right_password(counted_password_checks):
    make_user("designer", "designer")
    client = Client()
    for _ in range(4):
        response = log_in(client, "designer", WRONG)
        assert response.status_code == 200 and b"didn't match" in response.content
    response = log_in(client, "designer", WRONG)  # the fifth
    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    assert b"Too many failed logins for this username from your address. Try again in 15 minutes." in response.content
    assert len(counted_password_checks) == 5

    response = log_in(client, "designer", PASSWORD)
    assert response.status_code == 429 and not logged_in(client)
    assert len(counted_password_checks) == 5  # refused without looking at the password


def test_a_success_clears_the_count(counted_password_checks):
    make_user("designer", "designer")
    client = Client()
    for _ in range(4):
        log_in(client, "designer", WRONG)
    assert log_in(client, "designer", PASSWORD).status_code == 302 and logged_in(client)
    client.post("/accounts/logout/")
    for _ in range(4):
        assert log_in(client, "designer", WRONG).status_code == 200
    assert log_in(client, "designer", PASSWORD).status_code == 302


def test_one_attacked_account_does_not_lock_out_others_from_that_address_until_the_address_cap(settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    make_user("designer", "designer")
    make_user("operator", "operator")
    attacker = Client()
    for _ in range(5):
        log_in(attacker, "designer", WRONG)
    assert log_in(attacker, "designer", PASSWORD).status_code == 429
    # The same username from another address, and another username from the same address, still log in.
    assert log_in(Client(), "designer", PASSWORD, ip="10.0.0.2").status_code == 302
    assert log_in(Client(), "operator", PASSWORD).status_code == 302
    # Failures on other usernames from that address add up to the address cap: then nobody logs in from it.
    for name in ("ghost1", "ghost2"):
        assert log_in(attacker, name, WRONG).status_code == 200
    response = log_in(attacker, "ghost3", WRONG)  # the eighth failure from 10.0.0.1
    assert response.status_code == 429 and b"for your address" in response.content
    assert log_in(Client(), "operator", PASSWORD).status_code == 429
    assert log_in(Client(), "operator", PASSWORD, ip="10.0.0.3").status_code == 302


def test_the_start_of_a_lockout_is_audited_once():
    make_user("designer", "designer")
    client = Client()
    for _ in range(7):
        log_in(client, "designer", WRONG)
    (entry,) = AuditEntry.objects.filter(action="auth.lockout")
    assert entry.actor is None and entry.object_type == "auth.user" and entry.object_id == "designer"
    assert entry.data == {"scope": "account", "address": "10.0.0.1", "failures": 5, "window_seconds": 900}
    assert verify_chain()[1] is None


def test_the_lockout_ends_with_its_window(settings):
    settings.LOGIN_FAILURE_WINDOW = 1
    make_user("designer", "designer")
    client = Client()
    for _ in range(5):
        log_in(client, "designer", WRONG)
    assert log_in(client, "designer", PASSWORD).status_code == 429
    time.sleep(1.5)
    assert log_in(client, "designer", PASSWORD).status_code == 302


def test_usernames_are_counted_whatever_their_case():
    make_user("designer", "designer")
    client = Client()
    for name in ("designer", "Designer", "DESIGNER", "designer", "dEsigner"):
        log_in(client, name, WRONG)
    assert log_in(client, "designer", PASSWORD).status_code == 429


def test_behind_a_proxy_the_configured_header_names_the_client(settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    make_user("designer", "designer")
    client = Client()
    for _ in range(5):
        log_in(client, "designer", WRONG, ip="192.168.0.1", HTTP_X_REAL_IP="203.0.113.7")
    assert log_in(client, "designer", PASSWORD, ip="192.168.0.1", HTTP_X_REAL_IP="203.0.113.7").status_code == 429
    # Another client behind the same proxy is someone else.
    assert log_in(client, "designer", PASSWORD, ip="192.168.0.1", HTTP_X_REAL_IP="203.0.113.8").status_code == 302


def test_the_api_token_endpoint_is_throttled_the_same_way():
    make_user("designer", "designer")
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    for _ in range(4):
        assert client.post("/api/auth/token/", {"username": "designer", "password": WRONG},
                           format="json").status_code == 400
    response = client.post("/api/auth/token/", {"username": "designer", "password": WRONG}, format="json")
    assert response.status_code == 429 and response.data["code"] == "login_throttled"
    assert int(response["Retry-After"]) > 0 and "Try again in 15 minutes" in response.data["detail"]
    response = client.post("/api/auth/token/", {"username": "designer", "password": PASSWORD}, format="json")
    assert response.status_code == 429 and "token" not in response.data
    # Page and API share the count: the login page is locked for this username too.
    assert log_in(Client(), "designer", PASSWORD).status_code == 429
    # Another address is not.
    other = APIClient(REMOTE_ADDR="10.0.0.2")
    assert other.post("/api/auth/token/", {"username": "designer", "password": PASSWORD},
                      format="json").status_code == 200


def test_a_token_success_clears_the_count():
    make_user("designer", "designer")
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    for _ in range(4):
        client.post("/api/auth/token/", {"username": "designer", "password": WRONG}, format="json")
    assert client.post("/api/auth/token/", {"username": "designer", "password": PASSWORD},
                       format="json").status_code == 200
    for _ in range(4):
        assert client.post("/api/auth/token/", {"username": "designer", "password": WRONG},
                           format="json").status_code == 400


def test_the_admin_login_page_is_throttled_like_the_others():
    make_user("chief", "admin")
    client = Client()
    codes = [client.post("/admin/login/", {"username": "chief", "password": WRONG}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the admin's own page with its error, then the lockout
    locked = client.post("/admin/login/", {"username": "chief", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert AuditEntry.objects.filter(action="auth.lockout", object_id="chief").exists()


def test_the_token_admin_never_shows_a_key():
    from rest_framework.authtoken.models import Token

    chief = make_user("chief", "admin")
    chief.is_staff = chief.is_superuser = True
    chief.save()
    key = Token.objects.create(user=make_user("scripted", "operator")).key
    client = Client()
    client.force_login(chief)
    listing = client.get("/admin/authtoken/tokenproxy/")
    assert listing.status_code == 200 and "scripted" in listing.content.decode()
    assert key not in listing.content.decode()
    holder = Token.objects.get(key=key).user
    detail = client.get(f"/admin/authtoken/tokenproxy/{holder.pk}/change/")
    assert detail.status_code in {403, 404} and key not in detail.content.decode()
