"""Storing data sets for scheduled runs: parsed and checked once at upload, all or nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from workflows.engine.intake import IntakeError, json_loads, load_items
from workflows.models.audit import record
from workflows.models.datasets import Dataset
from workflows.models.teams import general_team_pk

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def parse_mapping(raw: Any) -> dict[str, str]:
    if raw in (None, "", {}):
        return {}
    if isinstance(raw, str):
        try:
            raw = json_loads(raw)
        except json.JSONDecodeError:
            raise IntakeError(gettext('The mapping must be JSON like {"text": "body", "subject": "title"}.')) from None
        except ValueError as exc:
            raise IntakeError(gettext("The mapping is not usable JSON: %(error)s") % {"error": exc}) from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise IntakeError(gettext("The mapping must map item fields to column names, all text."))
    return raw


def store(*, name: str, filename: str, data: bytes, mapping: dict[str, str], user: Any, team: Any = None) -> Dataset:
    """Validate the file the way a run would read it, then store it in `team` (replacing that team's data
    set of that name, never another team's; the caller checked the user may start runs there)."""
    if not NAME.match(name or ""):
        raise IntakeError(gettext("Name the data set with lower-case letters, digits, - and _ (e.g. "
                                  "'weekly-tickets')."))
    if len(data) > settings.ENGINE_UPLOAD_MAX_BYTES:
        raise IntakeError(gettext("The file is over %(limit)s MB.")
                          % {"limit": settings.ENGINE_UPLOAD_MAX_BYTES // 2**20})
    parsed, items = load_items(data, filename, mapping or None)
    team_id = team.pk if team is not None else general_team_pk()
    with transaction.atomic():
        dataset, created = Dataset.objects.update_or_create(
            team_id=team_id, name=name,
            defaults={"filename": filename[:255], "content": data, "size": len(data), "rows": len(items),
                      "columns": parsed.columns, "mapping": mapping, "created_by": user,
                      # retention ages a data set from when its content was stored
                      "created_at": timezone.now()})
        record("dataset.store", actor=user, obj=dataset, name=name, team=team_id, rows=len(items),
               replaced=not created)
    return dataset
