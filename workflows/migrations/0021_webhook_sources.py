from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion
import django.utils.timezone


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0020_mailboxes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookSource",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120)),
                ("slug", models.CharField(max_length=40, unique=True)),
                ("secret_encrypted", models.TextField()),
                ("secret_last4", models.CharField(max_length=4)),
                ("mapping", models.JSONField(default=dict)),
                ("items_pointer", models.CharField(blank=True, max_length=500)),
                ("idempotency_pointer", models.CharField(blank=True, max_length=500)),
                ("replay_window", models.PositiveIntegerField(default=300)),
                ("enabled", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("rotated_at", models.DateTimeField(blank=True, null=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("workflow", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="webhook_sources", to="workflows.workflow")),
            ],
            options={
                "ordering": ["workflow", "name"],
            },
        ),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("idempotency_key", models.CharField(blank=True, max_length=255)),
                ("payload_sha256", models.CharField(blank=True, max_length=64)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("status", models.CharField(choices=[("accepted", "Accepted"), ("refused", "Refused")],
                                            max_length=12)),
                ("item_ids", models.JSONField(default=list)),
                ("reason", models.TextField(blank=True)),
                ("run", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                          related_name="+", to="workflows.run")),
                ("source", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="deliveries",
                                             to="workflows.webhooksource")),
            ],
            options={
                "ordering": ["-received_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="webhooksource",
            constraint=models.UniqueConstraint(fields=("workflow", "name"), name="unique_webhook_source_name"),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(fields=["source", "-received_at"], name="webhook_delivery_recent"),
        ),
        migrations.AddConstraint(
            model_name="webhookdelivery",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "accepted")),
                                               fields=("source", "idempotency_key"),
                                               name="one_accepted_delivery_per_key"),
        ),
    ]
