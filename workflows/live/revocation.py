"""Tell open sockets when the right to watch ends: a logout closes the sockets of its session; a
change of a user's roles, or deactivation, makes the user's sockets check their right again
(live/consumers.py: LiveConsumer.live_revoke). Sent after commit, through the channel layer, so with
channels-redis a logout on one web process reaches sockets held by another.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from workflows.models import Membership

from .groups import CLOSE_ANONYMOUS, CLOSE_FORBIDDEN, session_group, user_group

logger = logging.getLogger(__name__)


def _send(group: str, code: int | None) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, {"type": "live.revoke", "code": code})
        except Exception:  # a channel layer that is down must not fail the logout or the role change
            logger.warning("could not tell the sockets of %s", group, exc_info=True)

    transaction.on_commit(send)


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        _send(session_group(key), CLOSE_ANONYMOUS)


def _groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    if action not in {"post_remove", "post_clear", "post_add"}:
        return
    if isinstance(instance, get_user_model()):
        users = [instance.pk]
    else:  # group.user_set.remove(...): the users are in pk_set (all of them on clear: unknown, so none)
        users = list(pk_set or ())
    for user_id in users:
        _send(user_group(user_id), None)


def _membership_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _send(user_group(instance.user_id), None)


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        _send(user_group(instance.pk), CLOSE_FORBIDDEN)


def install() -> None:
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="live-revoke-logout")
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid="live-revoke-groups")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="live-revoke-deactivated")
    # A team membership is a role too: removing one makes the user's sockets check again.
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="live-revoke-membership")
