from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from workflows.roles import ROLE_TITLES, capabilities_of, roles_anywhere


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    mine = roles_anywhere(user)  # organisation-wide and in any team
    return {"my_roles": sorted(str(ROLE_TITLES[r]) for r in mine), "perms_": capabilities_of(user)}
