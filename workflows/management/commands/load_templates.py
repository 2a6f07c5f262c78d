"""Load the workflow templates gallery into workflows (once per template; idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from workflows.design.gallery import load_into_database


class Command(BaseCommand):
    help = "Create one workflow per gallery template unless it already exists."

    def add_arguments(self, parser):
        parser.add_argument("--language", choices=[code for code, _ in settings.LANGUAGES],
                            default=settings.LANGUAGE_CODE,
                            help="The templates' language: their Italian variants with 'it' (Italian labels and "
                                 "the multilingual models). Default: the site's language (%(default)s).")

    def handle(self, *args, **options):
        for name, created in load_into_database(language=options["language"]):
            self.stdout.write(f"  {'created' if created else 'exists '} {name}")
