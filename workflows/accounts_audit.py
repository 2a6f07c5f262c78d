"""Changes to accounts go into the audit log: a user created, deleted, activated or made staff, a
password changed, a role (group) granted or withdrawn, an API token created or revoked.

They are the changes that decide who may do what, so they belong with the rest of the evidence, from
whatever door they come (admin, shell, management command). Recorded without personal data beyond the
username, and never a password hash or a token key. Signal handlers have no request: the acting person
is not known here (the admin's own history names them); the entry says what changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from rest_framework.authtoken.models import Token

from workflows.models.audit import record

WATCHED_FIELDS = ("is_active", "is_staff", "is_superuser", "password", "username")


def _before(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.pk is None or kwargs.get("raw"):
        instance._audit_before = None
        return
    instance._audit_before = sender.objects.filter(pk=instance.pk).values(*WATCHED_FIELDS).first()


def _saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if kwargs.get("raw") or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    if created:
        record("user.create", obj=instance, username=instance.get_username(), staff=instance.is_staff,
               superuser=instance.is_superuser)
        return
    before = getattr(instance, "_audit_before", None) or {}
    changed = {f: getattr(instance, f) for f in WATCHED_FIELDS if f in before and before[f] != getattr(instance, f)}
    if changed.pop("password", None) is not None:
        record("user.password_change", obj=instance, username=instance.get_username())
    if changed:
        record("user.update", obj=instance, username=instance.get_username(), changed=changed)


def _deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    record("user.delete", object_type=instance._meta.label_lower, object_id=instance.pk,
           username=instance.get_username())


def _groups_changed(sender: Any, instance: Any, action: str, pk_set: Any, reverse: bool, **kwargs: Any) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    verb = {"post_add": "granted", "post_remove": "withdrawn", "post_clear": "withdrawn"}[action]
    if reverse:  # group.user_set.add(users…)
        users = get_user_model().objects.filter(pk__in=pk_set or [])
        for user in users:
            record("user.roles", obj=user, username=user.get_username(), **{verb: [instance.name]})
        return
    names = sorted(Group.objects.filter(pk__in=pk_set or []).values_list("name", flat=True)) if pk_set else ["all"]
    record("user.roles", obj=instance, username=instance.get_username(), **{verb: names})


def _token_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        record("token.create", object_type="auth.user", object_id=instance.user_id,
               username=instance.user.get_username())


def _token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    record("token.revoke", object_type="auth.user", object_id=instance.user_id)


def install() -> None:
    User = get_user_model()
    pre_save.connect(_before, sender=User, dispatch_uid="audit-user-before")
    post_save.connect(_saved, sender=User, dispatch_uid="audit-user-saved")
    post_delete.connect(_deleted, sender=User, dispatch_uid="audit-user-deleted")
    m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid="audit-user-groups")
    post_save.connect(_token_saved, sender=Token, dispatch_uid="audit-token-saved")
    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="audit-token-deleted")
