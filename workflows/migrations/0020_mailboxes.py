from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion
import django.utils.timezone


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0019_originals"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Mailbox",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("host", models.CharField(max_length=253)),
                ("port", models.PositiveIntegerField(default=993)),
                ("security", models.CharField(choices=[("imaps", "IMAPS"), ("starttls", "STARTTLS")], default="imaps",
                                              max_length=10)),
                ("username", models.CharField(max_length=255)),
                ("password_encrypted", models.TextField()),
                ("folder", models.CharField(default="INBOX", max_length=255)),
                ("processed_folder", models.CharField(
                    blank=True, help_text="Taken messages are moved here; blank: they are flagged \\Seen.",
                    max_length=255)),
                ("poll_seconds", models.PositiveIntegerField(default=60)),
                ("enabled", models.BooleanField(default=True)),
                ("next_poll_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("polling_until", models.DateTimeField(blank=True, null=True)),
                ("last_poll_at", models.DateTimeField(blank=True, null=True)),
                ("last_error_code", models.CharField(blank=True, max_length=20)),
                ("last_error", models.TextField(blank=True)),
                ("last_error_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("workflow", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="mailbox",
                                                  to="workflows.workflow")),
            ],
            options={"ordering": ["id"]},
        ),
        migrations.CreateModel(
            name="MailboxMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("message_key", models.CharField(max_length=255)),
                ("uidvalidity", models.BigIntegerField(blank=True, null=True)),
                ("uid", models.BigIntegerField(blank=True, null=True)),
                ("subject", models.CharField(blank=True, max_length=255)),
                ("sender", models.CharField(blank=True, max_length=255)),
                ("status", models.CharField(choices=[("pending", "pending"), ("taken", "taken"),
                                                     ("dead", "dead-lettered")],
                                            db_index=True, default="pending", max_length=10)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("reason_code", models.CharField(blank=True, max_length=30)),
                ("reason_params", models.JSONField(blank=True, default=dict)),
                ("item_ids", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("mailbox", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="messages",
                                              to="workflows.mailbox")),
                ("run", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                          related_name="+", to="workflows.run")),
            ],
            options={
                "ordering": ["-id"],
                "constraints": [models.UniqueConstraint(fields=("mailbox", "message_key"),
                                                        name="mailbox_message_once")],
            },
        ),
    ]
