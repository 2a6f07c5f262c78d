from django.conf import settings
from django.db import migrations, models
import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0017_learning_loop"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationCheck",
            fields=[
                ("name", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("ran_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="NotificationProfile",
            fields=[
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                              related_name="+", serialize=False, to=settings.AUTH_USER_MODEL)),
                ("language", models.CharField(blank=True, max_length=10)),
                ("digest_sent_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(max_length=40)),
                ("params", models.JSONField(default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ("link", models.CharField(blank=True, max_length=500)),
                ("key", models.CharField(help_text="The event's name: one notification per user and event.",
                                         max_length=200)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("read_at", models.DateTimeField(blank=True, null=True)),
                ("in_app", models.BooleanField(default=True, help_text="Shown in the inbox and counted by the bell.")),
                ("email", models.BooleanField(default=False, help_text="Goes out in the user's next e-mail digest.")),
                ("emailed_at", models.DateTimeField(blank=True, null=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="notifications",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["user", "-created_at"], name="notification_inbox"),
                    models.Index(condition=models.Q(("in_app", True), ("read_at__isnull", True)), fields=["user"],
                                 name="notification_unread"),
                    models.Index(condition=models.Q(("email", True), ("emailed_at__isnull", True),
                                                    ("read_at__isnull", True)),
                                 fields=["user"], name="notification_to_email"),
                ],
                "constraints": [models.UniqueConstraint(fields=("user", "key"), name="unique_notification_per_event")],
            },
        ),
        migrations.CreateModel(
            name="NotificationPreference",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(max_length=40)),
                ("in_app", models.BooleanField(default=True)),
                ("email", models.BooleanField(default=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("user", "kind"),
                                                        name="unique_notification_preference")],
            },
        ),
    ]
