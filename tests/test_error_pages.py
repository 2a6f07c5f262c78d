"""The site's own 403, 404 and 500 pages (with DEBUG off, as in production: with DEBUG on Django shows
its technical pages instead), and the favicon, including the /favicon.ico every browser asks for."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import path
from django.views.defaults import server_error

from tests.builders import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False


def logged_in(*roles: str) -> Client:
    client = Client()
    user = make_user("someone", *roles)
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def test_it_answers_an_unknown_page_with_the_products_404(production):
    response = logged_in("designer").get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is nothing at this address" in page
    assert 'class="topbar"' in page and "/no/such/page/" in page
    assert "Django" not in page  # not the technical page
    assert "Content-Security-Policy" in response.headers


def test_it_keeps_json_404s_under_the_api(production):
    response = logged_in("designer").get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Nothing at /api/no-such-thing/")


def test_it_answers_a_refused_page_with_the_products_403_saying_why(production):
    response = logged_in("designer").get("/audit/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "You may not open this page" in page
    assert "Your role does not allow this (audit.view)." in page
    assert 'class="topbar"' in page


def test_its_500_page_renders_without_a_request_or_a_database():
    # Django renders 500.html with an empty context and no request: the page must need neither.
    response = server_error(RequestFactory().get("/runs/1/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "favicon.svg" in page and "app.css" in page


def boom(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("boom/", boom)]  # this module is the URLconf of the test below


@pytest.mark.urls(__name__)
def test_a_view_that_fails_gets_the_500_page(production):
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_every_page_links_the_favicon_and_favicon_ico_leads_to_it(production):
    page = Client().get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    response = Client().get("/favicon.ico")
    assert response.status_code in (301, 302)
    assert response["Location"] == "/static/favicon.svg"
