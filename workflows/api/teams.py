"""REST API for teams and their members (administrators: `team.manage`), the same write path as the
Teams page (workflows/teams.py): each change checked whole, then written with its audit entry."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows import teams
from workflows.access import get_team_for_user
from workflows.models.teams import MEMBER_ROLES, Membership, Team
from workflows.roles import require

CAPABILITY = "team.manage"
TAGS = ["teams"]


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class TeamSerializer(serializers.ModelSerializer):
    members = MemberSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "created_at", "members"]


class TeamNameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Up to 120 characters, unique.")


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=list(MEMBER_ROLES))


def _bad(exc: teams.TeamError) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


def _team(request: Request, pk: Any) -> Team:
    require(request.user, CAPABILITY)
    return get_team_for_user(request.user, pk, CAPABILITY)


@extend_schema(tags=TAGS, methods=["GET"], responses=TeamSerializer(many=True))
@extend_schema(tags=TAGS, methods=["POST"], request=TeamNameSerializer, responses={201: TeamSerializer})
@api_view(["GET", "POST"])
def team_list(request: Request) -> Response:
    """Every team with its members; POST creates a team."""
    require(request.user, CAPABILITY)
    if request.method == "GET":
        return Response(TeamSerializer(teams.teams_with_members(), many=True).data)
    form = TeamNameSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        team = teams.create_team(form.validated_data["name"], user=request.user)
    except teams.TeamError as exc:
        return _bad(exc)
    return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAGS, methods=["GET"], responses=TeamSerializer)
@extend_schema(tags=TAGS, methods=["PATCH"], request=TeamNameSerializer, responses=TeamSerializer)
@extend_schema(tags=TAGS, methods=["DELETE"], responses={204: None})
@api_view(["GET", "PATCH", "DELETE"])
def team_detail(request: Request, pk: int) -> Response:
    """One team with its members; PATCH renames it; DELETE deletes it if it owns no workflow or data set."""
    team = _team(request, pk)
    if request.method == "DELETE":
        try:
            teams.delete_team(team, user=request.user)
        except teams.TeamError as exc:
            return _bad(exc)
        return Response(status=204)
    if request.method == "PATCH":
        form = TeamNameSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            teams.rename_team(team, form.validated_data["name"], user=request.user)
        except teams.TeamError as exc:
            return _bad(exc)
    return Response(TeamSerializer(team).data)


@extend_schema(tags=TAGS, request=MemberAddSerializer, responses={201: MemberSerializer})
@api_view(["POST"])
def member_add(request: Request, pk: int) -> Response:
    """Give a user a role in the team (one role per membership; a second role is a second membership)."""
    team = _team(request, pk)
    form = MemberAddSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        membership = teams.add_member(team, form.validated_data["username"], form.validated_data["role"],
                                      user=request.user)
    except teams.TeamError as exc:
        return _bad(exc)
    return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAGS, request=None, responses={204: None})
@api_view(["DELETE"])
def member_remove(request: Request, pk: int, member: int) -> Response:
    """Take a role in the team away (the user's open sockets check their right again)."""
    team = _team(request, pk)
    membership = team.memberships.select_related("user", "team").filter(pk=member).first()
    if membership is None:
        raise Http404(gettext("No such member."))
    teams.remove_member(membership, user=request.user)
    return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("teams/", team_list, name="api-teams"),
    path("teams/<int:pk>/", team_detail, name="api-team"),
    path("teams/<int:pk>/members/", member_add, name="api-team-members"),
    path("teams/<int:pk>/members/<int:member>/", member_remove, name="api-team-member"),
]
