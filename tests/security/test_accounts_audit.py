"""Who may do what changes through accounts, roles and tokens: each such change leaves an audit entry
(without the password hash or the token key), from whatever door it came."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from workflows.models import AuditEntry
from workflows.models.audit import verify_chain

pytestmark = pytest.mark.django_db


def actions() -> list[tuple[str, dict]]:
    return [(e.action, e.data) for e in AuditEntry.objects.order_by("id")]


def test_account_role_and_token_changes_are_audited():
    validators = Group.objects.create(name="validator")
    user = get_user_model().objects.create_user("giulia", password="first-Secret-2026")
    user.groups.add(validators)
    user.is_staff = True
    user.set_password("second-Secret-2026")
    user.save()
    token = Token.objects.create(user=user)
    key = token.key
    token.delete()
    user.groups.remove(validators)
    user.delete()
    seen = actions()
    assert [a for a, _ in seen] == ["user.create", "user.roles", "user.password_change", "user.update",
                                    "token.create", "token.revoke", "user.roles", "user.delete"]
    assert seen[1][1]["granted"] == ["validator"] and seen[6][1]["withdrawn"] == ["validator"]
    assert seen[3][1]["changed"] == {"is_staff": True}
    text = str(seen)
    assert key not in text and "pbkdf2" not in text and "md5" not in text.lower()
    assert verify_chain()[1] is None


def test_a_login_is_not_an_account_change(client):
    get_user_model().objects.create_user("marco", password="a-Secret-2026")
    before = AuditEntry.objects.filter(action__startswith="user.").count()
    assert client.login(username="marco", password="a-Secret-2026")  # last_login is saved
    assert AuditEntry.objects.filter(action__startswith="user.").count() == before
