from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from workflows.models import AuditEntry
from workflows.models.audit import GENESIS, record, verify_chain

pytestmark = pytest.mark.django_db


def test_entries_are_chained(personas):
    # The personas' accounts and roles are audited already (workflows/accounts_audit.py).
    before, last = AuditEntry.objects.count(), AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    a = record("model.promote", actor=personas["validator"], object_type="model", object_id="m1", alias="production")
    b = record("model.promote", actor=personas["validator2"], object_type="model", object_id="m2")
    assert a.prev_hash == (last or GENESIS) and b.prev_hash == a.hash
    assert verify_chain() == (before + 2, None, "")


def test_entries_refuse_update_and_delete_in_code(personas):
    entry = record("x", actor=personas["admin"])
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


def test_verify_detects_an_altered_row(personas):
    before = AuditEntry.objects.count()
    record("a", actor=personas["admin"])
    victim = record("b", actor=personas["admin"], amount=10)
    record("c", actor=personas["admin"])
    _tamper("UPDATE workflows_auditentry SET data = %s WHERE id = %s", ['{"amount": 1}', victim.pk])
    count, broken, why = verify_chain()
    assert count == before + 1 and broken.pk == victim.pk and "altered" in why
    with pytest.raises(CommandError, match=f"#{victim.pk}"):
        call_command("verify_audit")


def test_verify_detects_a_removed_row(personas):
    record("a", actor=personas["admin"])
    victim = record("b", actor=personas["admin"])
    after = record("c", actor=personas["admin"])
    _tamper("DELETE FROM workflows_auditentry WHERE id = %s", [victim.pk])
    _, broken, why = verify_chain()
    assert broken.pk == after.pk and "removed" in why


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgres_refuses_update_and_delete(personas):
    entry = record("a", actor=personas["admin"])
    for sql in ("UPDATE workflows_auditentry SET action = 'b' WHERE id = %s",
                "DELETE FROM workflows_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == "a"


def _tamper(sql: str, params: list) -> None:
    """What an attacker with database access would do: bypass the model, and the trigger if any."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # a superuser can switch triggers off
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
