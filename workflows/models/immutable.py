"""Rows written once: workflow and model versions, audit entries, signed weekly packs.

Saving such a row again or deleting it raises; what they record is evidence (what ran, who approved,
what was signed), so a change is a new row, never an edit. Bulk queryset updates bypass `save()`, and
no code path uses them on these tables.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models


class ImmutableError(Exception):
    pass


class ImmutableModel(models.Model):
    """Abstract: `save()` of a stored row and `delete()` raise `immutable_error` with the model's own words."""

    immutable_error: ClassVar[type[Exception]] = ImmutableError
    change_refused: ClassVar[str] = "This record is immutable."
    delete_refused: ClassVar[str] = "This record is immutable and cannot be deleted."

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise self.immutable_error(self.change_refused)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise self.immutable_error(self.delete_refused)
