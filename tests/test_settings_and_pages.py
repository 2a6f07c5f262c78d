from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.routing import ProtocolTypeRouter
from channels.security.websocket import OriginValidator

from tests.builders import make_workflow, triage_graph
from workflows.design.versions import save_version
from workflows.graph import parse_graph

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7!k2" * 12,
    "ALLOWED_HOSTS": "factory.example.it",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/factory",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a production check must not inherit it.
    dropped = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True)


def test_production_profile_passes_check_deploy_with_no_warnings(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     env={**PRODUCTION_ENV, "FACTORY_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_when_a_protection_is_turned_off(tmp_path):
    # The check above can fail: without HSTS, Django's deploy checks warn and the command exits non-zero.
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     env={**PRODUCTION_ENV, "SECURE_HSTS_SECONDS": "0", "FACTORY_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "security.W004" in result.stderr + result.stdout


# Runs in a subprocess with the production settings: a migrated SQLite database of its own (the cache and
# channel layer stay on Redis), the plain static storage (the manifest one needs collectstatic).
PRODUCTION_REQUESTS = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("alice", password="a-long-and-unusual-password")
from django.test import Client
from workflows.design.versions import save_version

def cookies(response):
    return {name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"]), "samesite": c["samesite"]}
            for name, c in response.cookies.items()}

client = Client(HTTP_HOST="factory.example.it")
plain = client.get("/accounts/login/")
page = client.get("/accounts/login/", secure=True)
login = client.post("/accounts/login/", {"username": "alice", "password": "a-long-and-unusual-password"}, secure=True)
print(json.dumps({"plain": [plain.status_code, plain.get("Location")], "page": [page.status_code, dict(page.items())],
                  "page_cookies": cookies(page), "login": [login.status_code, dict(login.items())],
                  "login_cookies": cookies(login)}))
"""


def test_production_responses_carry_the_security_headers_and_secure_cookies(tmp_path):
    import json

    env = {**PRODUCTION_ENV, "DATABASE_URL": "", "FACTORY_VAR_DIR": str(tmp_path),
           "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
           "CACHE_PREFIX": f"prod-test-{os.getpid()}"}
    dropped = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE",
               "DJANGO_SETTINGS_MODULE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    result = subprocess.run([sys.executable, "-c", PRODUCTION_REQUESTS], cwd=ROOT, capture_output=True, text=True,
                            env={**base, **env, "DJANGO_SETTINGS_MODULE": "factory.settings"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert out["plain"] == [301, "https://factory.example.it/accounts/login/"]  # plain HTTP goes to HTTPS
    status, headers = out["page"]
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' wss://factory.example.it; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
    assert out["page_cookies"]["csrftoken"] == {"secure": True, "httponly": False, "samesite": "Lax"}
    status, headers = out["login"]
    assert status == 302 and headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert out["login_cookies"]["sessionid"] == {"secure": True, "httponly": True, "samesite": "Lax"}


def test_openapi_schema_is_valid_with_no_warnings(tmp_path):
    result = _manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"),
                     env={"FACTORY_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", env={**env, "SECRET_KEY": "", "FACTORY_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_debug_is_off_unless_asked_for(tmp_path):
    """A process started with the project's own settings and no DEBUG in its environment (a
    production set-up that forgot it) runs with DEBUG off: no tracebacks, no dev key."""
    code = "from django.conf import settings; print('DEBUG', settings.DEBUG)"
    base = {"FACTORY_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "factory.settings"}
    off = _manage("shell", "-c", code, env={**base, "SECRET_KEY": "x7!k2" * 12})
    assert off.returncode == 0 and "DEBUG False" in off.stdout, off.stderr[-2000:]
    refused = _manage("shell", "-c", code, env=base)
    assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr
    on = _manage("shell", "-c", code, env={**base, "DEBUG": "1"})
    assert on.returncode == 0 and "DEBUG True" in on.stdout


def test_bad_boolean_setting_says_what_to_write(tmp_path):
    result = _manage("check", env={"DEBUG": "maybe", "FACTORY_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "DEBUG must be 1/0" in result.stderr


def test_settings_follow_the_environment(settings):
    from django.conf import settings as live

    assert live.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    if os.environ.get("REDIS_URL"):
        assert live.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert live.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    else:
        assert live.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_websockets_pass_origin_check_and_authentication():
    from factory.asgi import application

    assert isinstance(application, ProtocolTypeRouter)
    ws = application.application_mapping["websocket"]
    assert isinstance(ws, OriginValidator)
    chain = []
    layer = ws.application
    while layer is not None:
        chain.append(type(layer).__name__)
        layer = getattr(layer, "inner", None)
    assert chain[:3] == ["CookieMiddleware", "SessionMiddleware", "AuthMiddleware"]
    assert chain[-1] == "URLRouter"


@pytest.mark.django_db
def test_login_page_and_schema_are_served(client):
    assert b"Log in" in client.get("/accounts/login/").content
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/workflows/{id}/versions/" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_pages_show_workflows_history_and_diff(client, personas, tickets_model):
    wf = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"]["method"] = "tfidf"
    save_version(wf, parse_graph(graph), user=personas["designer"], parent=1, message="TF-IDF head")
    client.force_login(personas["operator"])
    page = client.get("/").content.decode()
    assert "Triage" in page and "runnable" in page and "Create" not in page  # operators do not create
    detail = client.get(f"/workflows/{wf.pk}/").content.decode()
    assert "TF-IDF head" in detail and "v2" in detail
    diff = client.get(f"/workflows/{wf.pk}/diff/", {"from": 1, "to": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert "method" in diff and "tfidf" in diff and "<html" not in diff


@pytest.mark.django_db
def test_create_from_the_page(client, personas):
    client.force_login(personas["designer"])
    r = client.post("/workflows/new/", {"name": "Contracts"})
    assert r.status_code == 302
    assert client.post("/workflows/new/", {"name": ""}).status_code == 400
