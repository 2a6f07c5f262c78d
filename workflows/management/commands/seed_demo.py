"""Create the role groups and, for the embedded profile only, one demo user per role. Idempotent.

The demo users' passwords are published (README), so they are refused when DEBUG is off: production
runs `seed_demo --groups-only` and makes its first administrator with `create_admin`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from workflows.roles import ROLE_TITLES, ROLES


def ensure_groups() -> dict[str, Group]:
    return {role: Group.objects.get_or_create(name=role)[0] for role in ROLES}


class Command(BaseCommand):
    help = "Create role groups and demo users (one per role, plus a second validator for four-eyes approvals)."

    def add_arguments(self, parser):
        parser.add_argument("--groups-only", action="store_true", help="Create the role groups and no users.")
        parser.add_argument("--password-suffix", default="-demo-2026", help="Demo password = username + this suffix.")

    def handle(self, *args, groups_only: bool = False, password_suffix: str = "-demo-2026", **options):
        if not groups_only and not settings.DEBUG:
            raise CommandError(
                "Demo users have published passwords and are not created when DEBUG=0. Run "
                "`seed_demo --groups-only`, then make the first administrator with `manage.py create_admin` "
                "(password from DJANGO_SUPERUSER_PASSWORD) or `manage.py createsuperuser`.")
        groups = ensure_groups()
        if groups_only:
            self.stdout.write("Role groups ready.")
            return
        User = get_user_model()
        users = [(role, role) for role in ROLES] + [("validator2", "validator")]
        self.stdout.write("Demo users (username / password / role):")
        for username, role in users:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(username + password_suffix)
                user.is_staff = role == "admin"
                user.is_superuser = role == "admin"
                user.save()
            user.groups.add(groups[role])
            self.stdout.write(f"  {username:<15} {username + password_suffix:<26} {ROLE_TITLES[role]}")
