from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.builders import make_user
from workflows.roles import ROLES


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests render templates without it.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    # Hashing a password with PBKDF2 costs ~0.3 s; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
