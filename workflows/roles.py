"""Roles and what each may do. The one place where authorisation questions are answered.

A role comes from a Django group (organisation-wide: it applies in every team) or from a membership of
a team (models/teams.py: it applies to that team's workflows, runs, items, review tasks and data sets
only). The roles a user has on an object are both together (`roles_on`). Views, API endpoints and
sockets ask `can(user, capability, obj)`, or fetch objects through workflows/access.py, which asks it
for them, so every entry point asks the same question the same way. Asked without an object, `can`
answers whether the user may do it somewhere (pages and lists then narrow to the teams where they may,
through access.py). Refusals are written to the audit log.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext, gettext_lazy

from workflows.models.audit import record
from workflows.models.teams import MEMBER_ROLES, Membership

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
assert set(MEMBER_ROLES) == set(ROLES) - {ADMIN}, "a team membership carries any role but administrator"
CAPABILITIES: dict[str, frozenset[str]] = {
    "workflow.view": ANY_ROLE,
    "workflow.edit": frozenset({DESIGNER, ADMIN}),
    # Saving makes a draft; publishing makes a draft the version runs, intake and schedules use.
    # Where a workflow requires a second person, another designer or a validator approves
    # (never the draft's author or the requester: design/publishing.py).
    "workflow.publish": frozenset({DESIGNER, ADMIN}),
    "workflow.publish_approve": frozenset({DESIGNER, VALIDATOR}),
    # Whether publishing a workflow needs a second person is a policy, set by administrators.
    "workflow.policy": frozenset({ADMIN}),
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
    # Teams and who belongs to them with which roles.
    "team.manage": frozenset({ADMIN}),
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


# What only an organisation-wide role grants: the audit log spans every team.
ORGANISATION_WIDE = frozenset({"audit.view"})
# Decisions on a shared object (a model of the registry no team owns) that change what every team
# runs: a role held in one team does not reach them.
SHARED_DECISIONS = frozenset({"promotion.approve"})


def team_roles(user: Any) -> dict[int, frozenset[str]]:
    """The user's roles per team from memberships ({team id: roles}), read once per request."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    cached = getattr(user, "_factory_team_roles", None)
    if cached is None:
        per_team: dict[int, set[str]] = {}
        for team_id, role in Membership.objects.filter(user=user).values_list("team_id", "role"):
            per_team.setdefault(team_id, set()).add(role)
        cached = {team_id: frozenset(roles) for team_id, roles in per_team.items()}
        user._factory_team_roles = cached
    return cached


def roles_on(user: Any, team: Any) -> frozenset[str]:
    """The roles the user has in a team (a Team or its id): organisation-wide ones and the team's own."""
    team_id = getattr(team, "pk", team)
    return roles_of(user) | team_roles(user).get(team_id, frozenset())


def roles_anywhere(user: Any) -> frozenset[str]:
    """Every role the user has in some team or organisation-wide."""
    return roles_of(user).union(*team_roles(user).values())


def team_of(obj: Any) -> int | None:
    """The id of the team an object belongs to: a team, a workflow or data set, or anything of a
    workflow (version, run, schedule, channel) or of a run (item, review task). None: organisation-wide
    (the model registry, endpoints)."""
    meta = getattr(obj, "_meta", None)
    if meta is None:
        return None
    if meta.label_lower == "workflows.team":
        return obj.pk
    # The registry: a model trained for one team's step (its origin workflow) is that team's; others
    # are shared.
    if meta.label_lower == "workflows.promotionrequest":
        obj = obj.version
        meta = obj._meta
    if meta.label_lower == "workflows.modelversion":
        obj = obj.model
        meta = obj._meta
    if meta.label_lower == "workflows.registeredmodel":
        return obj.origin_workflow.team_id if obj.origin_workflow_id else None
    if hasattr(obj, "team_id"):
        return obj.team_id
    if getattr(obj, "workflow_id", None) is not None:
        return obj.workflow.team_id
    if getattr(obj, "run_id", None) is not None:
        return obj.run.workflow.team_id
    return None


def _capability(capability: str) -> frozenset[str]:
    try:
        return CAPABILITIES[capability]
    except KeyError:
        raise ValueError(f"Unknown capability {capability!r}") from None


def can(user: Any, capability: str, obj: Any = None) -> bool:
    """Whether the user may do `capability` on `obj` (roles in its team), or without an object anywhere."""
    allowed = _capability(capability)
    if capability in ORGANISATION_WIDE:
        return bool(roles_of(user) & allowed)
    team_id = team_of(obj)
    if team_id is None and obj is not None and capability in SHARED_DECISIONS:
        return bool(roles_of(user) & allowed)
    mine = roles_anywhere(user) if team_id is None else roles_on(user, team_id)
    return bool(mine & allowed)


def teams_where(user: Any, capability: str) -> set[int] | None:
    """The teams where the user may do `capability`: None for every team (an organisation-wide role)."""
    allowed = _capability(capability)
    if roles_of(user) & allowed:
        return None
    if capability in ORGANISATION_WIDE:
        return set()
    return {team_id for team_id, roles in team_roles(user).items() if roles & allowed}


def capabilities_of(user: Any) -> dict[str, bool]:
    return {name: can(user, name) for name in CAPABILITIES}


def deny(user: Any, capability: str, obj: Any = None, **data: Any) -> PermissionDenied:
    record("access.denied", actor=user, obj=obj, capability=capability, **data)  # type: ignore[arg-type]
    return PermissionDenied(gettext("Your role does not allow this (%(capability)s).") % {"capability": capability})


def require(user: Any, capability: str, obj: Any = None) -> None:
    if not can(user, capability, obj):
        raise deny(user, capability, obj)
