"""The first administrator of an installation, with the password from the environment.

Set-up scripts (and `make setup`) can run it unattended and again: an existing user keeps its
password. The password is never printed and never has a default.
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workflows.management.commands.seed_demo import ensure_groups
from workflows.roles import ADMIN


class Command(BaseCommand):
    help = ("Create the administrator DJANGO_SUPERUSER_USERNAME (default: admin) with the password in "
            "DJANGO_SUPERUSER_PASSWORD, unless that user exists.")

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or ""
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                raise CommandError("Set DJANGO_SUPERUSER_PASSWORD to the first administrator's password "
                                   "(or run `manage.py createsuperuser` and answer its questions).")
            candidate = User(username=username, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""))
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                raise CommandError("DJANGO_SUPERUSER_PASSWORD is too weak: " + " ".join(exc.messages)) from None
            user = User.objects.create_superuser(username=username, email=candidate.email, password=password)
            self.stdout.write(f"Administrator '{username}' created.")
        else:
            self.stdout.write(f"Administrator '{username}' already exists; its password is unchanged.")
        user.groups.add(ensure_groups()[ADMIN])
