"""The four-eyes rule, one for every decision that needs a second person: promoting a model version
(governance/promotion.py) and publishing a workflow version (design/publishing.py).

Whoever decides must hold the capability that decides and be neither the requester nor one of the
people who made what is decided (the trainer or registrar of a model version and of the versions it
was made from; the author of a draft and of the drafts since the live version). A refusal is audited
as the rule's `refused` action, its reason in English as the audit log keeps it, and raised in the
reader's language. It sits beside roles.py so that design/ and governance/ both reach it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext

from workflows.models.audit import record
from workflows.roles import can, deny


class FourEyesRefused(PermissionDenied):
    """The user holds the role but is the requester or a maker of what is decided."""


@dataclass(frozen=True)
class FourEyes:
    capability: str  # what deciding needs (roles.py)
    refused: str  # the audit action of a refusal
    # Why someone may not decide, in English (marked with gettext_noop where the rule is made):
    no_role: str
    requester: str
    maker: str
    error: type[FourEyesRefused] = FourEyesRefused

    def why_not(self, user: Any, *, requested_by: int | None, makers: Collection[int | None],
                obj: Any = None) -> str:
        """Why `user` may not decide (`obj`: what is decided, whose team's roles count), or "" when they
        may. In English; gettext() it where a person reads it."""
        if not can(user, self.capability, obj):
            return self.no_role
        if user.pk == requested_by:
            return self.requester
        if user.pk in {m for m in makers if m is not None}:
            return self.maker
        return ""

    def check(self, user: Any, obj: Any, *, requested_by: int | None, makers: Collection[int | None],
              **audit: Any) -> None:
        """Raise PermissionDenied (no role: audited as access.denied) or `error` (audited as `refused`,
        with `audit` beside the reason) unless `user` may decide `obj`."""
        if not can(user, self.capability, obj):
            raise deny(user, self.capability, obj)
        why = self.why_not(user, requested_by=requested_by, makers=makers, obj=obj)
        if why:
            record(self.refused, actor=user, obj=obj, why=why, **audit)
            raise self.error(gettext(why))
