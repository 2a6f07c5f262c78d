from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workflows.models.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and report the first broken link."

    def handle(self, *args, **options):
        count, broken, why = verify_chain()
        if broken is not None:
            raise CommandError(f"Audit chain broken at entry #{broken.pk} ({broken}): {why}. "
                               f"{count} entries before it are intact.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {count} entries verified."))
