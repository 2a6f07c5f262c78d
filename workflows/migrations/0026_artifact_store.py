# Written by hand: the artifact store every machine reaches (workflows/models/blobs.py).
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workflows", "0025_drafts_publish")]

    operations = [
        migrations.CreateModel(
            name="StoredBlob",
            fields=[
                ("sha256", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("size", models.BigIntegerField()),
                ("chunks", models.PositiveIntegerField()),
                ("facts", models.JSONField(blank=True, default=dict)),
                ("permanent", models.BooleanField(default=False)),
                ("held_until", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"indexes": [models.Index(fields=["held_until"], name="blob_held_until")]},
        ),
        migrations.CreateModel(
            name="BlobChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("index", models.PositiveIntegerField()),
                ("data", models.BinaryField()),
                ("blob", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                           to="workflows.storedblob")),
            ],
            options={"constraints": [models.UniqueConstraint(fields=("blob", "index"), name="unique_blob_chunk")]},
        ),
    ]
