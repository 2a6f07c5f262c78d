"""The audit log: append-only, hash-chained. Each entry stores the hash of the one before it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from .immutable import ImmutableModel

GENESIS = "0" * 64
# One advisory lock key for the chain: two writers must not both link to the same predecessor.
CHAIN_LOCK = 727_274_001


class AuditEntry(ImmutableModel):
    immutable_error = PermissionError
    change_refused = "Audit entries are append-only."
    delete_refused = "Audit entries are append-only."

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=80, blank=True)
    data = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.object_type}:{self.object_id}"

    def compute_hash(self) -> str:
        body = {
            "at": self.at.isoformat(),
            "actor": self.actor_name,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "data": self.data,
            "prev": self.prev_hash,
        }
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()
        return hashlib.sha256(encoded).hexdigest()



def record(action: str, *, actor: Any = None, obj: Any = None, object_type: str = "", object_id: Any = "",
           **data: Any) -> AuditEntry:
    """Append one entry to the chain, in the caller's transaction when there is one."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        entry = AuditEntry(
            actor=user,
            actor_name=user.get_username() if user else (str(actor) if actor else ""),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            data=json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
            prev_hash=last or GENESIS,
        )
        entry.at = timezone.now()
        entry.hash = entry.compute_hash()
        models.Model.save(entry)
    return entry


def verify_chain() -> tuple[int, AuditEntry | None, str]:
    """(entries checked, first broken entry or None, why)."""
    previous = GENESIS
    count = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != previous:
            return count, entry, ("its previous-hash does not match the entry before it "
                                  "(an entry was removed or reordered)")
        if entry.compute_hash() != entry.hash:
            return count, entry, "its content does not match its hash (the entry was altered)"
        previous = entry.hash
        count += 1
    return count, None, ""


def verify_chain_for(user: Any) -> tuple[int, AuditEntry | None, str]:
    """verify_chain() asked by a person (page or API), with its own audit entry. It is written after
    verifying, so a broken chain is reported as it was found."""
    count, broken, why = verify_chain()
    record("audit.verify", actor=user, ok=broken is None, checked=count, broken=broken.pk if broken else None)
    return count, broken, why
