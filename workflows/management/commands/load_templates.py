"""Load the workflow templates gallery into workflows (once per template; idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from workflows.design.gallery import load_into_database


class Command(BaseCommand):
    help = "Create one workflow per gallery template unless it already exists."

    def handle(self, *args, **options):
        for name, created in load_into_database():
            self.stdout.write(f"  {'created' if created else 'exists '} {name}")
