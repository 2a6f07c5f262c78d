from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from workflows.models.audit import AuditCheckpoint, verify_chain


class Command(BaseCommand):
    help = ("Verify the audit log's hash chain and its keyed checkpoints, and report the first broken link; "
            "optionally export the checkpoints (JSON lines) to keep a copy off the box.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--export-checkpoints", metavar="FILE",
                            help="Write every checkpoint as one JSON line to FILE ('-' for standard output).")

    def handle(self, *args, export_checkpoints: str | None = None, **options):
        if export_checkpoints:
            lines = [json.dumps(c.as_json(), sort_keys=True) + "\n" for c in AuditCheckpoint.objects.order_by("id")]
            if export_checkpoints == "-":
                self.stdout.write("".join(lines), ending="")
            else:
                with open(export_checkpoints, "w", encoding="utf-8") as handle:
                    handle.writelines(lines)
        count, broken, why = verify_chain()
        if broken is not None:
            raise CommandError(f"Audit chain broken at entry #{broken.pk} ({broken}): {why}. "
                               f"{count} entries before it are intact.")
        if why:
            raise CommandError(f"Audit chain broken: {why}. {count} entries verified.")
        checkpoints = AuditCheckpoint.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {count} entries verified, "
                                             f"{checkpoints} checkpoints hold."))
