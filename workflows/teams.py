"""Managing teams and their members: the one write path of the Teams page and `/api/teams/`.

Each change is checked whole before anything is written and leaves one audit entry. Who may call
these is the caller's question (capability `team.manage`, asked through workflows/access.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, ngettext

from workflows.models.audit import record
from workflows.models.teams import GENERAL, MEMBER_ROLES, Membership, Team
from workflows.roles import ROLE_TITLES

NAME_MAX = Team._meta.get_field("name").max_length


class TeamError(ValueError):
    """A change that cannot be made, with what to fix, in the reader's language."""


def _name(raw: Any, *, keep: Team | None = None) -> str:
    name = " ".join(str(raw or "").split())
    if not name or len(name) > NAME_MAX:
        raise TeamError(gettext("Give the team a name (up to %(max)s characters).") % {"max": NAME_MAX})
    taken = Team.objects.filter(name__iexact=name)
    if keep is not None:
        taken = taken.exclude(pk=keep.pk)
    if taken.exists():
        raise TeamError(gettext("A team named '%(name)s' exists already: choose another name.") % {"name": name})
    return name


def create_team(name: Any, *, user: Any) -> Team:
    name = _name(name)
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name)
            record("team.create", actor=user, obj=team, name=name)
    except IntegrityError:  # created by someone else meanwhile
        raise TeamError(gettext("A team named '%(name)s' exists already: choose another name.")
                        % {"name": name}) from None
    return team


def rename_team(team: Team, name: Any, *, user: Any) -> Team:
    name = _name(name, keep=team)
    old = team.name
    try:
        with transaction.atomic():
            Team.objects.filter(pk=team.pk).update(name=name)
            record("team.rename", actor=user, obj=team, old=old, name=name)
    except IntegrityError:
        raise TeamError(gettext("A team named '%(name)s' exists already: choose another name.")
                        % {"name": name}) from None
    team.name = name
    return team


def add_member(team: Team, username: Any, role: Any, *, user: Any) -> Membership:
    """Give `username` the role `role` in `team` (a second role in the same team is a second membership)."""
    if role not in MEMBER_ROLES:
        choices = ", ".join(f"{r} ({ROLE_TITLES[r]})" for r in MEMBER_ROLES)
        raise TeamError(gettext("Choose a role among: %(roles)s. Administrators are named organisation-wide, "
                                "not per team.") % {"roles": choices})
    username = str(username or "").strip()
    member = get_user_model().objects.filter(username=username, is_active=True).first() if username else None
    if member is None:
        raise TeamError(gettext("No active user is called '%(username)s': check the spelling.")
                        % {"username": username[:150]})
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=member, role=role)
            record("team.member.add", actor=user, obj=team, member=member.get_username(), role=role)
    except IntegrityError:
        raise TeamError(gettext("%(username)s is %(role)s in %(team)s already.")
                        % {"username": member.get_username(), "role": ROLE_TITLES[role], "team": team.name}) from None
    return membership


def remove_member(membership: Membership, *, user: Any) -> None:
    with transaction.atomic():
        deleted, _ = Membership.objects.filter(pk=membership.pk).delete()
        if deleted:
            record("team.member.remove", actor=user, obj=membership.team, member=membership.user.get_username(),
                   role=membership.role)


def delete_team(team: Team, *, user: Any) -> None:
    """Delete a team that owns nothing, with its memberships. A team's workflows and data sets are never
    deleted with it (nor left without a team): while it owns any, it is refused with what it owns.
    General, the team of every workflow created without one, stays."""
    if team.name == GENERAL:
        raise TeamError(gettext("%(name)s is the team of every workflow and data set created without one: it "
                                "cannot be deleted.") % {"name": GENERAL})
    with transaction.atomic():
        locked = Team.objects.select_for_update().get(pk=team.pk)
        workflows, datasets = locked.workflows.count(), locked.datasets.count()
        if workflows or datasets:
            owned = [ngettext("%(count)s workflow", "%(count)s workflows", workflows) % {"count": workflows},
                     ngettext("%(count)s data set", "%(count)s data sets", datasets) % {"count": datasets}]
            raise TeamError(gettext("%(team)s still owns %(owned)s (archived ones count too): delete them or "
                                    "create them again in another team first.")
                            % {"team": locked.name, "owned": gettext(" and ").join(owned)})
        members = [f"{m.user.get_username()} ({m.role})" for m in locked.memberships.select_related("user")]
        record("team.delete", actor=user, obj=locked, name=locked.name, members=members)
        locked.delete()


def teams_with_members() -> list[Team]:
    return list(Team.objects.prefetch_related("memberships__user").order_by("name", "id"))
