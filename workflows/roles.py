"""Roles and what each may do. The one place where authorisation questions are answered.

Roles are Django groups. Views, API endpoints and sockets ask `can(user, capability)`, or fetch
objects through workflows/access.py, which asks it for them, so every entry point asks the same
question the same way. Refusals are written to the audit log.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext, gettext_lazy

from workflows.models.audit import record

DESIGNER = "designer"
TRAINER = "trainer"
VALIDATOR = "validator"
OPERATOR = "operator"
BUSINESS_OWNER = "business_owner"
ADMIN = "admin"
ROLES = (DESIGNER, TRAINER, VALIDATOR, OPERATOR, BUSINESS_OWNER, ADMIN)
# Lazy: read in the language of whoever is shown them (management commands print them in English).
ROLE_TITLES = {
    DESIGNER: gettext_lazy("Programme manager (designer)"),
    TRAINER: gettext_lazy("Trainer"),
    VALIDATOR: gettext_lazy("Validator"),
    OPERATOR: gettext_lazy("Operator"),
    BUSINESS_OWNER: gettext_lazy("Business owner"),
    ADMIN: gettext_lazy("Administrator"),
}

ANY_ROLE = frozenset(ROLES)
CAPABILITIES: dict[str, frozenset[str]] = {
    "workflow.view": ANY_ROLE,
    "workflow.edit": frozenset({DESIGNER, ADMIN}),
    "run.view": ANY_ROLE,
    "run.start": frozenset({OPERATOR, DESIGNER, ADMIN}),
    "review.work": frozenset({OPERATOR, ADMIN}),
    "model.view": ANY_ROLE,
    "model.train": frozenset({TRAINER, ADMIN}),
    "promotion.request": frozenset({TRAINER, DESIGNER, ADMIN}),
    # Four-eyes: only validators approve, and governance/promotion.py also refuses the requester
    # and the version's trainer.
    "promotion.approve": frozenset({VALIDATOR}),
    "kpi.view": frozenset({BUSINESS_OWNER, ADMIN, DESIGNER, OPERATOR}),
    "baseline.edit": frozenset({BUSINESS_OWNER, ADMIN}),
    "pack.sign": frozenset({BUSINESS_OWNER}),
    "audit.view": frozenset({VALIDATOR, ADMIN, BUSINESS_OWNER}),
    # Every role may see where documents can go (designers pick endpoints by name); only administrators
    # register endpoints and destinations and set a workflow's data-residency policy.
    "endpoint.view": ANY_ROLE,
    "endpoint.manage": frozenset({ADMIN}),
    # The data lifecycle: how long a workflow keeps documents (a data-protection policy, set like the
    # residency policy), archiving (reversible: the workflow's editors) and what cannot be undone —
    # deleting a workflow and erasing a person's data on request — administrators only.
    "data.retention": frozenset({ADMIN}),
    "workflow.archive": frozenset({DESIGNER, ADMIN}),
    "workflow.delete": frozenset({ADMIN}),
    "data.erase": frozenset({ADMIN}),
}


def roles_of(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_factory_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._factory_roles = cached
    return cached


def can(user: Any, capability: str) -> bool:
    try:
        allowed = CAPABILITIES[capability]
    except KeyError:
        raise ValueError(f"Unknown capability {capability!r}") from None
    return bool(roles_of(user) & allowed)


def capabilities_of(user: Any) -> dict[str, bool]:
    mine = roles_of(user)
    return {name: bool(mine & allowed) for name, allowed in CAPABILITIES.items()}


def deny(user: Any, capability: str, obj: Any = None, **data: Any) -> PermissionDenied:
    record("access.denied", actor=user, obj=obj, capability=capability, **data)  # type: ignore[arg-type]
    return PermissionDenied(gettext("Your role does not allow this (%(capability)s).") % {"capability": capability})


def require(user: Any, capability: str, obj: Any = None) -> None:
    if not can(user, capability):
        raise deny(user, capability, obj)
