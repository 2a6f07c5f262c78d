"""The original files documents came from (a PDF, a scan, a ZIP's member): one row per file a run took.

The bytes live in the artifact store, content-addressed (workflows/models/blobs.py): the same file
uploaded twice is stored once and has a row per run that took it, under the name it came with.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Original(models.Model):
    sha256 = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    pages = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="originals")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sha256", "name"], name="unique_original_per_run")]
        indexes = [models.Index(fields=["sha256"], name="original_sha256")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]}…)"
