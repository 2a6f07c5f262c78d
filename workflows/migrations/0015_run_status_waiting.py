# A run whose remaining items all wait for people is "waiting" (a choice only: no data changes).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0014_governance_liveness"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="status",
            field=models.CharField(
                choices=[("queued", "queued"), ("running", "running"), ("waiting", "waiting"),
                         ("succeeded", "succeeded"), ("completed_with_errors", "completed with errors"),
                         ("failed", "failed"), ("cancelled", "cancelled")],
                db_index=True, default="queued", max_length=24),
        ),
    ]
