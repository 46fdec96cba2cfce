"""`tranche restore FOLDER`: a backup brought back into an empty database, then checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tranche.core.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `tranche backup` into the database DATABASE_URL names "
        "(empty, of the same kind: PostgreSQL or SQLite) and into MEDIA_ROOT, then count "
        "the rows of every table and compare them with the manifest. Stop the web and "
        "worker processes first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"].resolve()
        try:
            report = backup_restore(folder, progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        manifest = report.manifest
        self.stdout.write(
            f"Backup of {manifest['created_at']} (Tranche {manifest['tranche_version']}"
            f"{', commit ' + manifest['git_commit'][:12] if manifest.get('git_commit') else ''})."
        )
        width = max((len(check.table) for check in report.tables), default=5)
        self.stdout.write(f"{'table'.ljust(width)}  {'backup':>8}  {'restored':>8}")
        for check in report.tables:
            mark = "" if check.ok else "  MISMATCH"
            self.stdout.write(
                f"{check.table.ljust(width)}  {check.expected:>8}  {check.restored:>8}{mark}"
            )
        self.stdout.write(f"{report.files} uploaded file(s) restored and checked.")
        if report.unapplied_migrations:
            self.stdout.write(
                "This version of Tranche has migrations the backup predates; run "
                "`tranche migrate` before starting it: " + ", ".join(report.unapplied_migrations)
            )
        if not report.ok:
            bad = [check.table for check in report.tables if not check.ok]
            raise CommandError("Row counts differ from the backup's in: " + ", ".join(bad))
        rows = sum(check.restored for check in report.tables)
        self.stdout.write(
            f"Restore complete: {len(report.tables)} tables, {rows} rows, all as in the backup."
        )
