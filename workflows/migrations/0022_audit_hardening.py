"""The audit log's hash binds each entry's id and account (new entries: scheme 2), keyed checkpoints
anchor the chain (models/audit.py says why), and the database refuses changes to both tables.

On PostgreSQL TRUNCATE of the audit log is refused too: it fires no row trigger, so the UPDATE and
DELETE trigger of 0002 would let one statement empty the log.

A database may allow it by setting workflows.allow_audit_truncate = 'on' (the test database does: the
suite empties every table between tests). Anyone who can set it could drop the trigger as well; what
this stops is a routine `TRUNCATE … CASCADE` or a flush run against the wrong database.
"""

from __future__ import annotations

import django.utils.timezone
from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION workflows_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('workflows.allow_audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: TRUNCATE refused';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workflows_audit_no_truncate ON workflows_auditentry;
CREATE TRIGGER workflows_audit_no_truncate BEFORE TRUNCATE ON workflows_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION workflows_audit_no_truncate();
DROP TRIGGER IF EXISTS workflows_audit_no_truncate ON workflows_auditcheckpoint;
CREATE TRIGGER workflows_audit_no_truncate BEFORE TRUNCATE ON workflows_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION workflows_audit_no_truncate();
DROP TRIGGER IF EXISTS workflows_audit_append_only ON workflows_auditcheckpoint;
CREATE TRIGGER workflows_audit_append_only BEFORE UPDATE OR DELETE ON workflows_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION workflows_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS workflows_audit_append_only ON workflows_auditcheckpoint;
DROP TRIGGER IF EXISTS workflows_audit_no_truncate ON workflows_auditcheckpoint;
DROP TRIGGER IF EXISTS workflows_audit_no_truncate ON workflows_auditentry;
DROP FUNCTION IF EXISTS workflows_audit_no_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0021_webhook_sources")]
    operations = [
        migrations.AddField(model_name="auditentry", name="actor_pk",
                            field=models.BigIntegerField(blank=True, null=True)),
        migrations.AddField(model_name="auditentry", name="scheme",
                            field=models.PositiveSmallIntegerField(default=1)),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                ("entries", models.BigIntegerField()),
                ("last_id", models.BigIntegerField()),
                ("last_hash", models.CharField(max_length=64)),
                ("mac", models.CharField(max_length=64)),
            ],
            options={"ordering": ["id"]},
        ),
        migrations.RunPython(forwards, backwards),
    ]
