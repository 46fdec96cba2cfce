"""`tranche backup FOLDER`: the database and the uploaded files, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tranche.core.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database (PostgreSQL: pg_dump custom format; "
        "SQLite: the online backup API) and the uploaded files into FOLDER, which must be "
        "new or empty, with manifest.json (time, version, migrations, row counts, sha256 "
        "of every file)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"].resolve()
        try:
            manifest = backup_create(folder)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        database = manifest["database"]
        rows = sum(database["tables"].values())
        media = sum(1 for name in manifest["files"] if name.startswith("media/"))
        self.stdout.write(
            f"Backup of the {database['vendor']} database written to {folder}: "
            f"{len(database['tables'])} tables, {rows} rows, {media} uploaded file(s)."
        )
