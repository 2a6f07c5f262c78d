"""Teams and who belongs to them with which role.

Organisation-wide roles are Django groups (workflows/roles.py) and apply in every team, so a small firm
needs no team at all; a membership adds a role in one team only, so a person can be designer in one
team and operator in another. Every workflow, and every data set, belongs to one team.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

# Where workflows go when nobody chose a team (and where the migration put every existing one).
GENERAL = "General"
# Roles a membership may carry: administration is organisation-wide by nature (it manages the teams).
MEMBER_ROLES = ("designer", "trainer", "validator", "operator", "business_owner")


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=[(r, r) for r in MEMBER_ROLES])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username", "role"]
        constraints = [models.UniqueConstraint(fields=["team", "user", "role"], name="unique_team_membership_role")]

    def __str__(self) -> str:
        return f"{self.user} · {self.team} · {self.role}"


def general_team_pk() -> int:
    """The General team's id, made on first use: the default team of a workflow or data set created
    without one. Reads only the id, so the migration that adds the column can call it whatever columns
    a later migration gives Team."""
    pk = Team.objects.filter(name=GENERAL).values_list("pk", flat=True).first()
    if pk is None:
        pk = Team.objects.get_or_create(name=GENERAL)[0].pk
    return pk
