"""`tranche backup` and `tranche restore`: the whole database and the uploaded files in one
folder, with a manifest that says what is in it, so that a restore can prove it brought
back everything.

The database is copied by its own tools, never row by row through the ORM: PostgreSQL by
`pg_dump --format=custom` (one snapshot, the schema with its triggers and constraints),
SQLite by its online backup API (a consistent copy while the server keeps writing). The
row counts in the manifest come from the very same snapshot, so a restore can compare
them exactly. A backup is restored into the same kind of database it came from.

This module knows no app: the tables are the database's own, the models' tables come from
the app registry. It lives in core so that every app's data is covered without any app
importing another."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import posixpath
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import connection
from django.utils import timezone

from tranche.core.env import private_dir

MANIFEST = "manifest.json"
FORMAT = 1
MEDIA = "media"
PG_DUMP_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"
CHUNK = 1 << 20
# Tables that `tranche migrate` fills by itself on an empty database: rows there do not
# make a restore target "in use".
_FILLED_BY_MIGRATE = {"django_content_type", "auth_permission", "django_migrations"}


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    expected: int
    restored: int

    @property
    def ok(self) -> bool:
        return self.expected == self.restored


@dataclass(frozen=True)
class RestoreReport:
    manifest: dict[str, Any]
    tables: list[TableCheck]
    files: int
    unapplied_migrations: list[str]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.tables)


# --- shared pieces ------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return _sha256_read(handle)


def _sha256_read(handle: IO[bytes] | File[bytes]) -> str:
    digest = hashlib.sha256()
    while block := handle.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def _tranche_version() -> str:
    try:
        return metadata.version("tranche")
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_commit() -> str | None:
    """The commit the running code was checked out at, when it runs from a git checkout."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(settings.BASE_DIR), "rev-parse", "HEAD"],  # noqa: S607 - any git
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _uploads() -> Storage:
    """Where uploaded files are kept (STORAGES["default"]): MEDIA_ROOT, a shared folder,
    or an S3-compatible bucket. Backups read and restores write through it, so a bucket's
    files are in the backup as a folder's are."""
    return storages["default"]


def _is_link(storage: Storage, name: str) -> bool:
    try:
        return os.path.islink(storage.path(name))
    except NotImplementedError:  # a bucket has no links
        return False


def _stored_names(storage: Storage, folder: str = "") -> Iterator[str]:
    """Every file in the upload storage, in order; links in a folder, to files or to
    folders, are left out (the app never makes one, and a backup must not follow one out
    of MEDIA_ROOT)."""
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:  # no upload yet: MEDIA_ROOT does not exist
        return
    for name in sorted(files):
        path = posixpath.join(folder, name)
        if not _is_link(storage, path):
            yield _safe_name(path)
    for name in sorted(folders):
        # A bucket key such as "media/./logo.png" lists a folder named "." (or ""),
        # which would be listed again and again: refused, as such a file name is.
        if name in ("", ".", ".."):
            raise BackupError(
                "An uploaded file has a name a backup cannot hold: a folder named "
                f"{name!r} in {folder or 'the top folder'!r}. Rename that file."
            )
        path = _safe_name(posixpath.join(folder, name))
        if not _is_link(storage, path):
            yield from _stored_names(storage, path)


def _safe_name(name: str) -> str:
    """A stored file's name, as a relative path that stays inside the backup's media
    folder (a bucket's keys may hold anything)."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise BackupError(f"An uploaded file has a name a backup cannot hold: {name!r}.")
    return name


def _copy_media(folder: Path) -> None:
    storage = _uploads()
    for name in _stored_names(storage):
        target = folder / MEDIA / name
        if target.exists():
            continue
        private_dir(target.parent)
        try:
            with (
                storage.open(name, "rb") as source,
                _replacing(target) as temporary,
                temporary.open("wb") as copy,
            ):
                shutil.copyfileobj(source, copy, CHUNK)
        except Exception:
            # Deleted since it was listed (a logo replaced: no row names it any more). A
            # bucket says so with an error of its own, so ask again whether it exists.
            if storage.exists(name):
                raise


def _latest_migrations(rows: list[tuple[str, str]]) -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in rows:
        if name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _empty_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(
            f"{folder} already exists and is not empty: a backup is written to a new folder "
            "(e.g. one named after the date), never over another one."
        )
    private_dir(folder)


# --- PostgreSQL ---------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """`pg_dump`/`pg_restore`: from PATH, else the newest under /usr/lib/postgresql (Debian
    installs the server's binaries there without putting them on PATH)."""
    found = shutil.which(name)
    if found:
        return found

    def major(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else 0

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major)
    if candidates:
        return candidates[-1]
    raise BackupError(
        f"{name} was not found on PATH or under /usr/lib/postgresql/*/bin. Install the "
        "PostgreSQL client tools of your server's version (Debian: apt-get install "
        "postgresql-client)."
    )


def _pg_connection() -> tuple[str, dict[str, str]]:
    """A libpq connection string for the configured database, and the environment for a
    tool that uses it. The password travels in PGPASSWORD: a command line is readable by
    every local user (`ps`), a process's environment only by its owner."""
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    db = connection.settings_dict
    keywords = {d.keyword.decode() for d in pq.Conninfo.get_defaults()}
    # Django's own options (isolation_level, pool, server_side_binding…) are not libpq's.
    options = {
        key: str(value)
        for key, value in (db.get("OPTIONS") or {}).items()
        if key in keywords and key not in {"password", "passfile"}
    }
    params = {"dbname": db["NAME"], "host": db["HOST"], "port": db["PORT"], "user": db["USER"]}
    conninfo = make_conninfo(**{k: v for k, v in params.items() if v}, **options)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return conninfo, env


def _pg_tables(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(current_schemas(false)) "
        "ORDER BY c.relname"
    )
    return [row[0] for row in cursor.fetchall()]


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    # The PostgreSQL tools with arguments made here; the password is in `env` only.
    result = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")


def _pg_backup(folder: Path) -> dict[str, Any]:
    """pg_dump of the snapshot this transaction exported: the counts and migrations read
    here are those of the very rows in the dump, whatever the server writes meanwhile."""
    import psycopg

    conninfo, env = _pg_connection()
    pg_dump = pg_tool("pg_dump")
    password = env.get("PGPASSWORD")
    with psycopg.connect(conninfo, password=password) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]  # type: ignore[index]
            tables = _pg_tables(cursor)
            counts = {}
            for table in tables:
                cursor.execute(f"SELECT count(*) FROM {_quoted(table)}")  # noqa: S608 - quoted name
                counts[table] = cursor.fetchone()[0]  # type: ignore[index]
            migrations = _pg_migrations(cursor, tables)
            server = conn.info.parameter_status("server_version") or ""
            # The snapshot lives as long as this transaction: pg_dump runs inside it.
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={folder / PG_DUMP_FILE}",
                    f"--dbname={conninfo}",
                ],
                env,
                "pg_dump",
            )
        conn.rollback()
    return {
        "vendor": "postgresql",
        "file": PG_DUMP_FILE,
        "server_version": server,
        "tables": counts,
        "migrations": migrations,
    }


def _pg_migrations(cursor: Any, tables: list[str]) -> dict[str, str]:
    if "django_migrations" not in tables:
        return {}
    cursor.execute("SELECT app, name FROM django_migrations")
    return _latest_migrations(cursor.fetchall())


def _pg_restore(folder: Path, manifest: dict[str, Any]) -> None:
    conninfo, env = _pg_connection()
    connection.close()  # pg_restore replaces what Django's connection may have cached
    # One transaction: a restore that fails half-way leaves the target as it was. --clean
    # drops an empty schema a `tranche migrate` may have made there first.
    _run(
        [
            pg_tool("pg_restore"),
            "--single-transaction",
            "--exit-on-error",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            f"--dbname={conninfo}",
            str(folder / manifest["database"]["file"]),
        ],
        env,
        "pg_restore",
    )


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_read(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in database.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts = {
            table: database.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchone()[0]  # noqa: S608
            for table in tables
        }
        migrations = (
            _latest_migrations(
                database.execute("SELECT app, name FROM django_migrations").fetchall()
            )
            if "django_migrations" in tables
            else {}
        )
    finally:
        database.close()
    return counts, migrations


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy of a database that may be in use
    (it starts over by itself if a writer changes a page it already copied)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # The copy takes the source's WAL mode with its pages; a backup is one file.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _sqlite_backup(folder: Path) -> dict[str, Any]:
    source = Path(connection.settings_dict["NAME"])
    copy = folder / SQLITE_FILE
    _sqlite_copy(source, copy)
    # Counted in the copy itself: the manifest describes exactly what was saved.
    counts, migrations = _sqlite_read(copy)
    return {
        "vendor": "sqlite",
        "file": SQLITE_FILE,
        "server_version": sqlite3.sqlite_version,
        "tables": counts,
        "migrations": migrations,
    }


def _sqlite_restore(folder: Path, manifest: dict[str, Any]) -> None:
    target = Path(connection.settings_dict["NAME"])
    connection.close()
    _sqlite_copy(folder / manifest["database"]["file"], target)


# --- backup -------------------------------------------------------------------------------


def backup_create(folder: Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Write a backup of the configured database and the uploaded files into `folder` (new or
    empty), manifest last: a folder without a manifest is an unfinished backup, and
    `restore` refuses it."""
    now = now or timezone.now()
    _empty_folder(folder)
    # Uploaded files are copied before the database and again after it: a logo replaced
    # while the dump runs (the old file is deleted once the new row commits) is in the
    # first pass, one uploaded meanwhile in the second, so every file the dumped rows name
    # is in the backup.
    _copy_media(folder)
    vendor = connection.vendor
    if vendor == "postgresql":
        database = _pg_backup(folder)
    elif vendor == "sqlite":
        database = _sqlite_backup(folder)
    else:
        raise BackupError(f"Backups of a {vendor} database are not supported.")
    _copy_media(folder)
    files = {
        str(path.relative_to(folder)): {"size": path.stat().st_size, "sha256": sha256_of(path)}
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    }
    manifest = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "tranche_version": _tranche_version(),
        "git_commit": _git_commit(),
        "database": database,
        "files": files,
    }
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    temporary.replace(folder / MANIFEST)
    return manifest


# --- restore ------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{folder} has no {MANIFEST}: it is not a backup, or its backup did not finish."
        )
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path} is not valid JSON: {exc}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"{path} is not a backup manifest this version of Tranche reads "
            f"(format {FORMAT} expected)."
        )
    return manifest


def _verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    damaged = []
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != entry["sha256"]:
            damaged.append(name)
    if damaged:
        raise BackupError(
            "The backup is damaged: these files are missing or differ from the manifest: "
            + ", ".join(sorted(damaged))
            + ". Nothing was restored."
        )


def _data_tables() -> set[str]:
    return {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    } - _FILLED_BY_MIGRATE


def _tables_with_rows() -> list[str]:
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        used = []
        for table in sorted(_data_tables() & existing):
            cursor.execute(f"SELECT 1 FROM {_quoted(table)} LIMIT 1")  # noqa: S608 - quoted name
            if cursor.fetchone():
                used.append(table)
    return used


def _media_conflicts(manifest: dict[str, Any], storage: Storage) -> list[str]:
    conflicts = []
    for name, entry in _media_entries(manifest):
        _safe_name(name)  # before anything is written: a damaged or crafted manifest
        try:
            stored = _stored_sha256(storage, name)
        except IsADirectoryError:
            stored = "a folder"
        if stored not in (None, entry["sha256"]):
            conflicts.append(name)
    return conflicts


def _stored_sha256(storage: Storage, name: str) -> str | None:
    """The digest of a stored file; None when there is no such file."""
    if not storage.exists(name):
        return None
    with storage.open(name, "rb") as handle:
        return _sha256_read(handle)


def _media_entries(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    prefix = f"{MEDIA}/"
    for name, entry in sorted(manifest["files"].items()):
        if name.startswith(prefix):
            yield name[len(prefix) :], entry


def _count_rows(tables: list[str]) -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        for table in tables:
            if table not in existing:
                counts[table] = -1
                continue
            cursor.execute(f"SELECT count(*) FROM {_quoted(table)}")  # noqa: S608 - quoted name
            counts[table] = cursor.fetchone()[0]
    return counts


def _unapplied_migrations() -> list[str]:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def backup_restore(
    folder: Path, *, progress: Callable[[str], None] = lambda line: None
) -> RestoreReport:
    """Bring a backup back into an empty database of the same kind and its uploads, then
    count every table again and compare with the manifest. Refuses, before writing
    anything, a damaged backup, another kind of database, a target that holds data, and
    uploaded files that would be overwritten by different ones."""
    manifest = read_manifest(folder)
    _verify_files(folder, manifest)
    vendor = manifest["database"]["vendor"]
    if vendor != connection.vendor:
        raise BackupError(
            f"This backup is of a {vendor} database and DATABASE_URL points at a "
            f"{connection.vendor} one: a backup is restored into the same kind of database."
        )
    used = _tables_with_rows()
    if used:
        raise BackupError(
            "The target database is not empty (rows in "
            + ", ".join(used)
            + "). Restore into a new, empty database; nothing was changed."
        )
    storage = _uploads()
    conflicts = _media_conflicts(manifest, storage)
    if conflicts:
        raise BackupError(
            "These uploaded files exist with other contents and would be overwritten: "
            + ", ".join(conflicts)
            + ". Restore into an empty MEDIA_ROOT or bucket; nothing was changed."
        )

    progress(f"Restoring the {vendor} database from {manifest['database']['file']}…")
    if vendor == "postgresql":
        _pg_restore(folder, manifest)
    else:
        _sqlite_restore(folder, manifest)

    files = 0
    for name, entry in _media_entries(manifest):
        if _stored_sha256(storage, name) is None:  # else: there already, the same
            with (folder / MEDIA / name).open("rb") as source:
                saved = storage.save(name, File(source))
            if saved != name:
                raise BackupError(f"{name} was stored as {saved}: restore into an empty one.")
        if _stored_sha256(storage, name) != entry["sha256"]:
            raise BackupError(f"{name} differs from the backup after it was copied.")
        files += 1

    expected: dict[str, int] = manifest["database"]["tables"]
    restored = _count_rows(sorted(expected))
    checks = [TableCheck(table, expected[table], restored[table]) for table in sorted(expected)]
    return RestoreReport(
        manifest=manifest,
        tables=checks,
        files=files,
        unapplied_migrations=_unapplied_migrations(),
    )


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """A file written beside its target and renamed over it: never half a file there."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        yield Path(name)
        Path(name).replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()
