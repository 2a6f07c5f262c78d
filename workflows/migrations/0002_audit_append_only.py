"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit log."""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION workflows_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workflows_audit_append_only ON workflows_auditentry;
CREATE TRIGGER workflows_audit_append_only BEFORE UPDATE OR DELETE ON workflows_auditentry
    FOR EACH ROW EXECUTE FUNCTION workflows_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS workflows_audit_append_only ON workflows_auditentry;
DROP FUNCTION IF EXISTS workflows_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
