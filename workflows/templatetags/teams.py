"""The team a new workflow or data set goes to, chosen on the form that creates it."""

from __future__ import annotations

from typing import Any

from django import template

from workflows.access import visible_teams

register = template.Library()


@register.inclusion_tag("teams/_choice.html", takes_context=True)
def team_choice(context: Any, capability: str) -> dict[str, Any]:
    """A team menu when the user may create in more than one team; nothing otherwise (their only team,
    or General, is taken: access.team_for_new)."""
    request = context.get("request")
    teams = visible_teams(getattr(request, "user", None), capability)
    return {"teams": teams if len(teams) > 1 else [], "chosen": str(getattr(request, "POST", {}).get("team", ""))}
