"""The audit log: append-only, hash-chained. Each entry stores the hash of the one before it.

A chain alone cannot tell that its newest entries were deleted, nor that someone with database access
rewrote it from some entry on (recomputing every hash after it). Keyed checkpoints anchor it: every so
often the number of entries and the last hash are signed with a key the database does not hold
(HMAC-SHA256; AUDIT_CHECKPOINT_KEY, else derived from SECRET_KEY), written to their own table and to
the log (and to AUDIT_CHECKPOINT_FILE when set), so a copy can be kept off the box.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext

from .immutable import ImmutableModel

GENESIS = "0" * 64
# One advisory lock key for the chain: two writers must not both link to the same predecessor.
CHAIN_LOCK = 727_274_001
# Entries written before the hash bound the row id and the actor's account keep their first scheme.
SCHEME = 2
logger = logging.getLogger("workflows.audit")


class AuditEntry(ImmutableModel):
    immutable_error = PermissionError
    change_refused = "Audit entries are append-only."
    delete_refused = "Audit entries are append-only."

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    # The account as written, hashed: `actor` becomes NULL when the user is deleted, this does not.
    actor_pk = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=80, blank=True)
    data = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    scheme = models.PositiveSmallIntegerField(default=1)

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
        if self.scheme >= 2:
            body.update(id=self.pk, actor_pk=self.actor_pk, scheme=self.scheme)
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()
        return hashlib.sha256(encoded).hexdigest()

    def intact(self) -> bool:
        """Its hash matches its content, and its account link (if the user still exists) is the one hashed."""
        if self.compute_hash() != self.hash:
            return False
        return self.scheme < 2 or self.actor_id is None or self.actor_id == self.actor_pk


class AuditCheckpoint(ImmutableModel):
    """The chain's length and last hash at a moment, signed with a key the database does not hold."""

    immutable_error = PermissionError
    change_refused = "Audit checkpoints are append-only."
    delete_refused = "Audit checkpoints are append-only."

    at = models.DateTimeField(default=timezone.now)
    entries = models.BigIntegerField()
    last_id = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]

    def signed_text(self) -> str:
        return f"{self.entries}:{self.last_id}:{self.last_hash}:{self.at.isoformat()}"

    def expected_mac(self) -> str:
        return hmac.new(checkpoint_key(), self.signed_text().encode(), hashlib.sha256).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "entries": self.entries, "last_id": self.last_id,
                "last_hash": self.last_hash, "mac": self.mac}


def checkpoint_key() -> bytes:
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "") or ""
    if key:
        return key.encode()
    return hashlib.sha256(b"audit-checkpoint:" + settings.SECRET_KEY.encode()).digest()


def _next_id() -> int:
    """The id the new entry will get, so that its hash can include it (called under the chain lock)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence('workflows_auditentry', 'id'))")
            return int(cursor.fetchone()[0])
        cursor.execute("SELECT max(seq) FROM sqlite_sequence WHERE name = 'workflows_auditentry'")
        sequence = cursor.fetchone()[0] or 0
    highest = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return max(sequence, highest) + 1



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
            id=_next_id(),
            scheme=SCHEME,
            actor=user,
            actor_pk=user.pk if user else None,
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


def write_checkpoint() -> AuditCheckpoint | None:
    """Sign the chain's current length and last hash; None when nothing was written since the last one."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
        last = AuditEntry.objects.order_by("-id").values("id", "hash").first()
        previous = AuditCheckpoint.objects.order_by("-id").first()
        if last is None or (previous is not None and previous.last_id == last["id"]):
            return None
        checkpoint = AuditCheckpoint(entries=AuditEntry.objects.count(), last_id=last["id"], last_hash=last["hash"])
        checkpoint.at = timezone.now()
        checkpoint.mac = checkpoint.expected_mac()
        models.Model.save(checkpoint)
    line = json.dumps(checkpoint.as_json(), sort_keys=True)
    logger.info("audit checkpoint %s", line)
    path = getattr(settings, "AUDIT_CHECKPOINT_FILE", "")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return checkpoint


def checkpoint_tick() -> dict[str, int]:
    """Monitor duty: a checkpoint every AUDIT_CHECKPOINT_SECONDS when entries were added since."""
    latest = AuditCheckpoint.objects.order_by("-id").values_list("at", flat=True).first()
    if latest is None or (timezone.now() - latest).total_seconds() >= settings.AUDIT_CHECKPOINT_SECONDS:
        return {"audit_checkpoints": int(write_checkpoint() is not None)}
    return {"audit_checkpoints": 0}


def verify_chain() -> tuple[int, AuditEntry | None, str]:
    """(entries checked, first broken entry or None, why: empty when the chain and every checkpoint hold).

    A checkpoint whose entry is gone says the newest entries were removed; one whose entry carries
    another hash, or stands at another position, says the chain was rewritten; one whose signature
    does not match was forged or altered."""
    checkpoints: dict[int, list[AuditCheckpoint]] = {}
    for checkpoint in AuditCheckpoint.objects.order_by("id"):
        if not hmac.compare_digest(checkpoint.mac, checkpoint.expected_mac()):
            why = gettext("the checkpoint of %(at)s does not carry a valid signature (it was forged or altered)")
            return 0, None, why % {"at": checkpoint.at.isoformat()}
        checkpoints.setdefault(checkpoint.last_id, []).append(checkpoint)
    previous = GENESIS
    count = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != previous:
            return count, entry, gettext("its previous-hash does not match the entry before it "
                                         "(an entry was removed or reordered)")
        if not entry.intact():
            return count, entry, gettext("its content does not match its hash (the entry was altered)")
        previous = entry.hash
        count += 1
        for checkpoint in checkpoints.pop(entry.pk, []):
            if checkpoint.last_hash != entry.hash or checkpoint.entries != count:
                why = gettext("it is not what the checkpoint of %(at)s signed (entry %(n)s of the chain, "
                              "hash %(hash)s…): the chain was rewritten")
                return count - 1, entry, why % {"at": checkpoint.at.isoformat(), "n": checkpoint.entries,
                                                "hash": checkpoint.last_hash[:12]}
    for last_id, missing in sorted(checkpoints.items()):
        why = gettext("entry #%(id)s, the last one the checkpoint of %(at)s signed, is missing: "
                      "the newest entries were removed")
        return count, None, why % {"id": last_id, "at": missing[0].at.isoformat()}
    return count, None, ""


def verify_chain_for(user: Any) -> tuple[int, AuditEntry | None, str]:
    """verify_chain() asked by a person (page or API), with its own audit entry. It is written after
    verifying, so a broken chain is reported as it was found."""
    count, broken, why = verify_chain()
    record("audit.verify", actor=user, ok=not why, checked=count, broken=broken.pk if broken else None)
    return count, broken, why
