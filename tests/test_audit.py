from __future__ import annotations

import json

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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgres_refuses_truncate(personas):
    """TRUNCATE fires no row trigger: without its own statement trigger it would empty the log in one go.
    The test database allows it (the suite flushes tables between tests); production databases do not."""
    record("a", actor=personas["admin"])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL workflows.allow_audit_truncate = 'off'")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own inserts leave deferred checks pending
        cursor.execute("TRUNCATE workflows_auditentry")
    assert AuditEntry.objects.filter(action="a").exists()


def test_the_hash_binds_the_entry_id_and_the_actor_account(personas):
    """actor_name alone is what a person reads; the account (actor_id) and the row's id are what the
    chain must pin, or an entry could be re-attributed or renumbered without breaking a link."""
    victim = record("a", actor=personas["admin"])
    record("b", actor=personas["admin"])
    _tamper("UPDATE workflows_auditentry SET actor_id = %s WHERE id = %s", [personas["validator"].pk, victim.pk])
    _, broken, why = verify_chain()
    assert broken is not None and broken.pk == victim.pk and "altered" in why


def test_a_checkpoint_detects_the_newest_entries_removed(personas):
    from workflows.models.audit import write_checkpoint

    record("a", actor=personas["admin"])
    record("b", actor=personas["admin"])
    newest = record("c", actor=personas["admin"])
    checkpoint = write_checkpoint()
    assert checkpoint is not None and checkpoint.last_id == newest.pk
    assert write_checkpoint() is None  # nothing new since: no second checkpoint
    assert verify_chain()[2] == ""
    _tamper("DELETE FROM workflows_auditentry WHERE id = %s", [newest.pk])
    count, broken, why = verify_chain()
    assert broken is None and count == AuditEntry.objects.count()
    assert "checkpoint" in why and f"#{newest.pk}" in why


def test_a_checkpoint_detects_a_rewritten_chain(personas):
    from workflows.models.audit import write_checkpoint

    victim = record("a", actor=personas["admin"], amount=10)
    record("b", actor=personas["admin"])
    write_checkpoint()
    # An attacker with database access rewrites one entry and recomputes every hash after it: every
    # link holds again, but the chain no longer ends where the keyed checkpoint says it ended.
    entries = list(AuditEntry.objects.filter(id__gte=victim.pk).order_by("id"))
    previous = entries[0].prev_hash
    for entry in entries:
        if entry.pk == victim.pk:
            entry.data = {"amount": 1}
        entry.prev_hash = previous
        entry.hash = entry.compute_hash()
        _tamper("UPDATE workflows_auditentry SET data = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [json.dumps(entry.data), entry.prev_hash, entry.hash, entry.pk])
        previous = entry.hash
    _, broken, why = verify_chain()
    assert "checkpoint" in why and "rewritten" in why and broken is not None


def test_a_forged_checkpoint_is_detected(personas):
    from workflows.models.audit import AuditCheckpoint, write_checkpoint

    record("a", actor=personas["admin"])
    checkpoint = write_checkpoint()
    _tamper("UPDATE workflows_auditcheckpoint SET entries = entries + 1 WHERE id = %s", [checkpoint.pk])
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).entries == checkpoint.entries + 1
    assert "checkpoint" in verify_chain()[2]


def test_checkpoints_are_exported_as_json_lines(personas, tmp_path):
    from workflows.models.audit import write_checkpoint

    record("a", actor=personas["admin"])
    checkpoint = write_checkpoint()
    out = tmp_path / "checkpoints.jsonl"
    call_command("verify_audit", "--export-checkpoints", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1]["last_hash"] == checkpoint.last_hash and lines[-1]["mac"] == checkpoint.mac


def test_the_monitor_duty_checkpoints_at_most_once_per_interval(personas, settings):
    from workflows.models.audit import AuditCheckpoint, checkpoint_tick

    settings.AUDIT_CHECKPOINT_SECONDS = 3600
    record("a", actor=personas["admin"])
    checkpoint_tick()
    record("b", actor=personas["admin"])
    checkpoint_tick()  # within the hour: nothing new is signed yet
    assert AuditCheckpoint.objects.count() == 1
    settings.AUDIT_CHECKPOINT_SECONDS = 0  # the hour has passed
    checkpoint_tick()
    checkpoint_tick()  # and nothing was written since: no second checkpoint of the same head
    assert AuditCheckpoint.objects.count() == 2 and verify_chain()[2] == ""
