from django.db import migrations, models


class Migration(migrations.Migration):
    """Runs fed by an inbound webhook or a mailbox say so (and every origin's label is translated)."""

    dependencies = [("workflows", "0023_data_lifecycle")]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="origin",
            field=models.CharField(choices=[("upload", "upload"), ("rest", "REST intake"), ("schedule", "schedule"),
                                            ("api", "API"), ("webhook", "inbound webhook"), ("mailbox", "mailbox")],
                                   default="upload", max_length=12),
        ),
    ]
