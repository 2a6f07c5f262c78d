"""The Content-Security-Policy: strict on every response, relaxed only on the API docs pages, and
markup that needs nothing more (no inline script, style or event handler, in templates or rendered pages).

The browser half (no violation on the main pages while they are used) is tests/browser/test_csp_browser.py;
the production headers (HSTS, cookies, …) are tests/test_settings_and_pages.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from tests import test_role_matrix as matrix
from tests.builders import make_workflow

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
STRICT = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws://testserver; "
          "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_pages_api_answers_refusals_and_errors_all_carry_the_strict_policy(personas):
    client = Client()
    assert client.get("/accounts/login/")["Content-Security-Policy"] == STRICT
    assert client.get("/").status_code == 302 and client.get("/")["Content-Security-Policy"] == STRICT
    assert client.get("/api/workflows/")["Content-Security-Policy"] == STRICT  # 401
    client.force_login(personas["operator"])
    assert client.get("/")["Content-Security-Policy"] == STRICT
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/no-such-page/")["Content-Security-Policy"] == STRICT
    assert client.get("/audit/").status_code == 403 and client.get("/audit/")["Content-Security-Policy"] == STRICT


def test_the_socket_origin_follows_the_host_and_scheme():
    response = Client().get("/accounts/login/", secure=True, HTTP_HOST="localhost:8000")
    assert directives(response)["connect-src"] == ["'self'", "wss://localhost:8000"]


def test_only_the_api_docs_relax_the_policy_and_never_for_scripts():
    client = Client()
    for path in ("/api/docs/", "/api/redoc/"):
        response = client.get(path)
        assert response.status_code == 200
        assert directives(response)["script-src"] == ["'self'"], path
        assert not _inline_scripts(response.content.decode()), path
    relaxed = {**directives(client.get("/accounts/login/")), "img-src": ["'self'", "data:"]}
    assert directives(client.get("/api/docs/")) == relaxed
    assert directives(client.get("/api/redoc/")) == {**relaxed, "style-src": ["'self'", "'unsafe-inline'"],
                                                     "worker-src": ["'self'", "blob:"]}
    # Swagger UI's start-up script is a file of its own (drf-spectacular's split view), under 'self'.
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


# --- the markup: nothing a strict policy would refuse.

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def _inline_scripts(html: str) -> list[str]:
    """<script> elements with a body that the browser would execute (json_script data blocks are fine)."""
    found = []
    for tag, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I):
        if "application/json" in tag:
            continue
        if body.strip() or "src=" not in tag:
            found.append(f"<script{tag}>{body[:60]}")
    return found


def problems_in(html: str) -> list[str]:
    problems = _inline_scripts(html)
    for name, pattern in (("event-handler attribute", INLINE_HANDLER), ("style attribute", STYLE_ATTRIBUTE),
                          ("<style> element", STYLE_ELEMENT), ("javascript: URL", JS_URL)):
        problems += [f"{name}: {m.group(0)[:80]}" for m in pattern.finditer(html)]
    return problems


def test_templates_have_no_inline_script_style_or_event_handler():
    found = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = re.sub(r"{% comment %}.*?{% endcomment %}", "", path.read_text(), flags=re.S)
        problems = problems_in(re.sub(r"{#.*?#}", "", text))  # one-line comments only, as Django has them
        if problems:
            found[str(path.relative_to(ROOT))] = problems
    assert not found, found


def test_template_comments_are_one_line():
    # Django's {# #} ends at the line: a longer one is rendered as text, and a tag named in it becomes real.
    for path in sorted((ROOT / "templates").rglob("*.html")):
        assert not re.search(r"{#(?:(?!#}).)*$", path.read_text(), re.M), path


def test_static_scripts_do_not_write_style_attributes_or_inline_html_styles():
    for path in sorted((ROOT / "static" / "js").glob("*.js")):
        text = re.sub(r"/\*.*?\*/|^\s*//.*$", "", path.read_text(), flags=re.S | re.M)  # comments may name them
        assert not re.search(r"setAttribute\(\s*[\"']style|style=|cssText|eval\(|new Function", text), path


@pytest.fixture
def every_page(personas):
    """(path, who) for every page of the role matrix (not the API), with the objects it needs."""
    from tests.kpi import ledger

    pages = []
    wf = make_workflow(personas["designer"]).pk
    pages += [(row.path.format(wf=wf), sorted(row.allowed)[0]) for row in matrix.rows()
              if row.method == "get" and not row.api]
    ids = matrix._run_objects(personas)
    pages += [(row.path.format(**ids), sorted(row.allowed)[0]) for row in matrix.run_rows()
              if row.method == "get" and not row.api]
    gov = matrix._governance_objects(personas, 1)
    pages += [(row.path.format(**gov), sorted(row.allowed)[0]) for row in matrix.governance_rows()
              if row.method == "get" and not row.api]
    workflow = make_workflow(personas["designer"])
    ledger.build(workflow, personas["designer"])
    pages += [(row.path.format(wf=workflow.pk), sorted(row.allowed)[0]) for row in matrix.kpi_rows()
              if row.method == "get" and not row.api]
    pages += [(f"/workflows/{workflow.pk}/kpis/?week=2025-W13", "business_owner"), ("/accounts/login/", None)]
    return pages


def test_every_rendered_page_has_no_inline_script_style_or_event_handler(personas, every_page):
    from workflows.models import NodeStats

    # Label mix and confidence histogram on the run page's cards (their bars are drawn with SVG).
    NodeStats.objects.filter(node="ext").update(labels={"billing": 6, "technical": 4}, confidence_hist={"9": 5, "5": 2})
    found = {}
    for path, who in every_page:
        client = Client()
        if who:
            client.force_login(personas[who])
        response = client.get(path)
        assert response.status_code < 400, (path, who, response.status_code)
        if "/originals/" in path:
            # A stored original (an uploaded PDF or image) is a download, never a page: it runs nothing at all.
            assert response["Content-Security-Policy"] == "sandbox", path
            assert response["X-Content-Type-Options"] == "nosniff", path
            continue
        assert response["Content-Security-Policy"] == STRICT, path
        if response["Content-Type"].startswith("text/html"):
            problems = problems_in(response.content.decode())
            if problems:
                found[path] = problems
    assert not found, found
    assert len(every_page) >= 25
