# Written by hand: drafts that do not go live (design/publishing.py).
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def publish_heads(apps, schema_editor):
    """Existing workflows keep running what they ran: their latest version is their live one."""
    Workflow = apps.get_model("workflows", "Workflow")
    Workflow.objects.filter(head__gt=0).update(published=F("head"))


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0024_run_origins"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="published",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="publish_needs_approval",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="run",
            name="draft",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(publish_heads, migrations.RunPython.noop),
        migrations.CreateModel(
            name="PublishRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("requested_at", models.DateTimeField(auto_now_add=True)),
                ("reason", models.TextField(blank=True)),
                ("decision", models.CharField(
                    choices=[("open", "waiting for a decision"), ("approved", "approved"), ("rejected", "rejected"),
                             ("cancelled", "cancelled")],
                    default="open", max_length=16)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("decision_reason", models.TextField(blank=True)),
                ("previous", models.PositiveIntegerField(blank=True, null=True)),
                ("decided_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("requested_by", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                   related_name="+", to=settings.AUTH_USER_MODEL)),
                ("version", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="publish_requests", to="workflows.workflowversion")),
                ("workflow", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="publish_requests", to="workflows.workflow")),
            ],
            options={"ordering": ["-requested_at", "-id"]},
        ),
        migrations.AddConstraint(
            model_name="publishrequest",
            constraint=models.UniqueConstraint(condition=models.Q(("decision", "open")), fields=("workflow",),
                                               name="one_open_publish_request"),
        ),
    ]
