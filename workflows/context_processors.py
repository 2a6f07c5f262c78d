from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from workflows.roles import ROLE_TITLES, capabilities_of, roles_of


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    mine = roles_of(user)
    return {"my_roles": sorted(str(ROLE_TITLES[r]) for r in mine), "perms_": capabilities_of(user)}
