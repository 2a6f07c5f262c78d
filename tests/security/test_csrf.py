"""CSRF on every mutating form and htmx request.

Browser requests authenticate with the session cookie, so every POST/PUT/PATCH/DELETE they can make
must carry the CSRF token: pages put it in forms ({% csrf_token %}) and, for htmx and canvas.js, in
the X-CSRFToken header that base.html sets on <body> with hx-headers. Django views are checked by
CsrfViewMiddleware; the REST API's views are csrf_exempt at the Django level because DRF's
SessionAuthentication checks the token itself. Requests authenticated with an API token
(TokenAuthentication, `Authorization: Token …`) carry no cookie a third-party page could ride on, so
they need no CSRF token, by design; nor does the token exchange (api-token), which answers a token
only to whoever sent the password.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from tests import test_role_matrix as matrix
from tests.builders import make_workflow
from workflows.api import authentication

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
MUTATING = ("post", "put", "patch", "delete")
# Routes that take a mutation without a CSRF token, each with the reason.
NO_TOKEN_NEEDED = {
    "api-token": "exchanges a username and password for an API token; it sets no cookie and reads none",
    "webhook-receive": "an inbound webhook delivery: no session is read, the HMAC signature of the body is the "
                       "authentication (tests/inbound/test_webhooks.py)",
}


def every_route(patterns=None, prefix: str = ""):
    """(name, route, callback) for every URL pattern outside the admin (Django's own, csrf_protect'ed)."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if p.namespace != "admin":
                yield from every_route(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern), p.callback


def concrete(route: str) -> str:
    """A path the route matches: converters and regex groups filled with sample values."""
    samples = {"int": "1", "slug": "x", "str": "x", "path": "x"}
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: samples.get(m.group(1) or "str", "x"), path)
    return "/" + path.replace("^", "").replace("$", "")


def refused_for_csrf(response) -> bool:
    # An HTML-only API view (the docs) renders DRF's refusal as a bare "403 Forbidden": its reason is in .data.
    reason = response.content + str(getattr(response, "data", "")).encode()
    return response.status_code == 403 and b"CSRF" in reason


def test_the_walk_sees_every_mutating_route():
    names = {name for name, _, _ in every_route()}
    mutating = {row.name for rows in (matrix.rows(), matrix.run_rows(), matrix.governance_rows(), matrix.kpi_rows(),
                                      matrix.endpoint_rows())
                for row in rows if row.method in MUTATING}
    assert mutating <= names and {"login", "logout", "api-token"} <= names


@pytest.mark.parametrize("method", MUTATING)
def test_every_route_refuses_a_session_mutation_without_the_token(personas, method):
    """Whatever the route and whether or not it takes this method: a logged-in browser without the token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas["admin"])
    accepted = []
    for name, route, _ in every_route():
        if name in NO_TOKEN_NEEDED:
            continue
        response = getattr(client, method)(concrete(route), {} if method == "post" else "{}",
                                           content_type="application/json")
        if not refused_for_csrf(response):
            accepted.append(f"{method.upper()} {concrete(route)} ({name}) → {response.status_code}")
    assert not accepted, "Mutations accepted without a CSRF token:\n" + "\n".join(accepted)


def test_the_admin_is_protected_too(personas):
    client = Client(enforce_csrf_checks=True)
    assert refused_for_csrf(client.post("/admin/login/", {"username": "admin", "password": "x"}))


CHECKING = (SessionAuthentication.enforce_csrf, authentication.SessionAuthentication.enforce_csrf)


def test_csrf_exempt_views_are_api_views_whose_session_authentication_checks_the_token():
    exempt = []
    for name, route, callback in every_route():
        if not getattr(callback, "csrf_exempt", False) or name in NO_TOKEN_NEEDED:
            continue
        view = getattr(callback, "cls", None)
        assert view is not None and issubclass(view, APIView), (
            f"{name} ({route}) is csrf_exempt and not a REST API view")
        for auth in view().get_authenticators():
            if isinstance(auth, SessionAuthentication):
                # DRF's check, or ours, which calls it and only turns its 415 into a CSRF refusal.
                assert type(auth).enforce_csrf in CHECKING, f"{name}: {type(auth).__name__} skips the CSRF check"
        exempt.append(name)
    assert "api-me" in exempt  # the walk did reach the API


# --- every mutating row of the role matrix: refused without the token, done with it (as htmx sends it).


def _call(kind: str, personas, client: Client, row: matrix.Row, n: int):
    """One request of a role-matrix row, with fresh objects made the way the matrix makes them."""
    from tests.kpi import ledger

    if kind == "plain":
        return matrix._request(client, row, make_workflow(personas["designer"]).pk)
    if kind == "run":
        return matrix._run_request(client, row, matrix._run_objects(personas))
    if kind == "governance":  # names of models, sets and uploads must not repeat: n differs per call
        return matrix._governance_request(client, row, matrix._governance_objects(personas, n), n)
    if kind == "endpoint":
        return matrix._endpoint_request(personas, client, row, n)
    workflow = make_workflow(personas["designer"])
    ledger.build(workflow, personas["designer"])
    return matrix._request(client, row, workflow.pk)


MUTATING_ROWS = [(kind, row) for kind, rows in (("plain", matrix.rows()), ("run", matrix.run_rows()),
                                                ("governance", matrix.governance_rows()), ("kpi", matrix.kpi_rows()),
                                                ("endpoint", matrix.endpoint_rows()))
                 for row in rows if row.method in MUTATING]


def _token_client(user) -> Client:
    """A browser's session: the token from the page it was given (body hx-headers), sent as htmx sends it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/").content.decode()
    token = json.loads(re.search(r"<body hx-headers='([^']*)'", page).group(1))["X-CSRFToken"]
    client.defaults["HTTP_X_CSRFTOKEN"] = token
    return client


def test_the_matrix_has_the_mutating_rows():
    assert len(MUTATING_ROWS) >= 40


@pytest.mark.parametrize(("kind", "row"), MUTATING_ROWS,
                         ids=lambda x: f"{x.method} {x.path}" if isinstance(x, matrix.Row) else x)
def test_every_mutating_row_is_refused_without_the_token_and_done_with_it(personas, kind, row):
    who = sorted(row.allowed)[0]
    bare = Client(enforce_csrf_checks=True)
    bare.force_login(personas[who])
    response = _call(kind, personas, bare, row, 1)
    assert refused_for_csrf(response), (who, response.status_code)
    response = _call(kind, personas, _token_client(personas[who]), row, 2)
    assert 200 <= response.status_code < 400, (who, response.status_code, response.content[:300])


def test_the_token_from_the_page_makes_an_htmx_panel_post_go_through(personas):
    workflow = make_workflow(personas["designer"])
    form = {"_node": "cls", "_type": "classify", "cfg-model": "minilm@production"}
    bare = Client(enforce_csrf_checks=True, HTTP_HX_REQUEST="true")
    bare.force_login(personas["designer"])
    assert refused_for_csrf(bare.post(f"/workflows/{workflow.pk}/panel/", form))
    client = _token_client(personas["designer"])
    response = client.post(f"/workflows/{workflow.pk}/panel/", form, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'id="node-form"' in response.content


def test_token_authenticated_api_requests_need_no_csrf_token(personas):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=personas["designer"])
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/workflows/", {"name": "By script"}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201


# --- the templates: every form that posts has the token; every htmx mutation sits under base.html's hx-headers.


def _templates():
    return sorted((ROOT / "templates").rglob("*.html"))


def test_base_template_gives_htmx_the_token():
    base = (ROOT / "templates" / "base.html").read_text()
    assert """<body hx-headers='{"X-CSRFToken": "{{ csrf_token }}"}'>""" in base


def test_every_posting_form_in_the_templates_carries_the_token():
    missing = []
    for path in _templates():
        text = path.read_text()
        for form in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, re.S | re.I):
            if re.search(r"method=[\"']?post", form.group(0)[:300], re.I) and "{% csrf_token %}" not in form.group(1):
                missing.append(f"{path.relative_to(ROOT)}: {form.group(0)[:80]}")
    assert not missing, missing


def test_htmx_mutations_only_in_pages_under_base_or_in_partials_swapped_into_them():
    for path in _templates():
        text = path.read_text()
        if re.search(r"\bhx-(post|put|patch|delete)=", text):
            assert '{% extends "base.html" %}' in text or path.name.startswith("_"), path
