"""The Teams page (administration): create, rename and delete teams, add and remove members with a role.

Thin: workflows/teams.py checks and writes each change with its audit entry; only `team.manage`
(administrators) reaches any of it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from workflows import teams
from workflows.access import get_team_for_user
from workflows.models.teams import GENERAL, MEMBER_ROLES
from workflows.roles import ROLE_TITLES, require

CAPABILITY = "team.manage"


def _page(request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
    context = {"teams": teams.teams_with_members(), "roles": [(r, ROLE_TITLES[r]) for r in MEMBER_ROLES],
               "role_titles": ROLE_TITLES, "error": error, "general": GENERAL}
    return render(request, "teams/list.html", context, status=status)


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    require(request.user, CAPABILITY)
    if request.method == "POST":
        try:
            team = teams.create_team(request.POST.get("name"), user=request.user)
        except teams.TeamError as exc:
            return _page(request, str(exc), status=400)
        messages.success(request, gettext("Team '%(name)s' created.") % {"name": team.name})
        return redirect("team-list")
    return _page(request)


@login_required
@require_POST
def team_rename(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_team_for_user(request.user, pk, CAPABILITY)
    try:
        teams.rename_team(team, request.POST.get("name"), user=request.user)
    except teams.TeamError as exc:
        return _page(request, str(exc), status=400)
    messages.success(request, gettext("Team renamed to '%(name)s'.") % {"name": team.name})
    return redirect("team-list")


@login_required
@require_POST
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_team_for_user(request.user, pk, CAPABILITY)
    try:
        membership = teams.add_member(team, request.POST.get("username"), request.POST.get("role"), user=request.user)
    except teams.TeamError as exc:
        return _page(request, str(exc), status=400)
    messages.success(request, gettext("%(username)s is now %(role)s in %(team)s.")
                     % {"username": membership.user.get_username(), "role": ROLE_TITLES[membership.role],
                        "team": team.name})
    return redirect("team-list")


@login_required
@require_POST
def member_remove(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    team = get_team_for_user(request.user, pk, CAPABILITY)
    membership = team.memberships.select_related("user", "team").filter(pk=member).first()
    if membership is None:
        raise Http404(gettext("No such member."))
    teams.remove_member(membership, user=request.user)
    messages.success(request, gettext("%(username)s is no longer %(role)s in %(team)s.")
                     % {"username": membership.user.get_username(), "role": ROLE_TITLES[membership.role],
                        "team": team.name})
    return redirect("team-list")


@login_required
@require_POST
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_team_for_user(request.user, pk, CAPABILITY)
    try:
        teams.delete_team(team, user=request.user)
    except teams.TeamError as exc:
        return _page(request, str(exc), status=400)
    messages.success(request, gettext("Team '%(name)s' deleted.") % {"name": team.name})
    return redirect("team-list")


urlpatterns = [
    path("teams/", team_list, name="team-list"),
    path("teams/<int:pk>/rename/", team_rename, name="team-rename"),
    path("teams/<int:pk>/delete/", team_delete, name="team-delete"),
    path("teams/<int:pk>/members/", member_add, name="team-member-add"),
    path("teams/<int:pk>/members/<int:member>/remove/", member_remove, name="team-member-remove"),
]
