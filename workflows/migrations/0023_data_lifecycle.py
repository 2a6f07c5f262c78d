"""Data lifecycle: a workflow's retention and archive dates, and erasure requests (hashes only)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0022_audit_hardening"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="archived_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="purged_before",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="retention_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="retention_days",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ErasureRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("salt", models.CharField(max_length=32)),
                ("identifier_hash", models.CharField(help_text="HMAC-SHA256 of the salt and the identifier.",
                                                     max_length=64)),
                ("kind", models.CharField(help_text="What the identifier looked like: email, tax_code or name.",
                                          max_length=20)),
                ("status", models.CharField(choices=[("searched", "searched"), ("erased", "erased")],
                                            default="searched", max_length=10)),
                ("found", models.JSONField(default=dict, help_text="{kind of record: count} when searched.")),
                ("erased", models.JSONField(blank=True, default=dict,
                                            help_text="{kind of record: count} when erased.")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("erased_at", models.DateTimeField(blank=True, null=True)),
                ("erased_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                related_name="+", to=settings.AUTH_USER_MODEL)),
                ("requested_by", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                   related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
    ]
