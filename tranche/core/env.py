"""Typed readers for settings that come from the environment.

Every reader fails loudly with `ImproperlyConfigured` naming the variable and the value it
got, so a typo in a deployment stops the process at start-up instead of running with a
silently different configuration.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def default_var_dir() -> Path:
    """Where local state lives (SQLite file, mail, generated secret): `VAR_DIR` or ./var."""
    return Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parents[2] / "var")


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) readable by this process's user only: it holds the
    database, outgoing mail and the generated secret key. An existing folder is
    tightened too, since earlier versions created it world-readable."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change: leave it to its owner
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists, and tighten it if it does."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    return path


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str) -> str:
    raw = (os.environ.get(name) or default).strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must be an absolute http(s) URL such as https://portal.example.com; "
            f"got {raw!r}."
        )
    return raw


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn `sqlite:///relative/path`, `sqlite:////abs/path` or `postgresql://…` into a
    Django DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        if path.startswith("//"):
            name = Path(path[1:])
        elif path.startswith("/") and len(path) > 1:
            name = base_dir / path[1:]
        else:
            raise ImproperlyConfigured(
                f"DATABASE_URL {url!r} names no file; use sqlite:///var/tranche.sqlite3."
            )
        return sqlite_database(name)
    if scheme in ("postgres", "postgresql", "pgsql"):
        if not parts.path.strip("/"):
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database.")
        options = dict(parse_qsl(parts.query))
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} has a bad port.") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgresql://; got {url!r}."
    )


def postgres_connection(
    entry: dict[str, Any], *, conn_max_age: int, statement_timeout_ms: int, pgbouncer: bool
) -> dict[str, Any]:
    """A PostgreSQL DATABASES entry tuned for production (docs/scaling.md).

    - Each process keeps its connection for `conn_max_age` seconds (0: one per request),
      checked before reuse, so a database restart costs one failed check, not an error.
    - `statement_timeout_ms` (0: none) ends a runaway query instead of letting it hold a
      connection and its locks; it is sent as a start-up option of the connection.
    - Behind PgBouncer in transaction mode a server connection serves another client
      between transactions: no server-side cursors (they outlive a transaction), no
      prepared statements (psycopg prepares a query it runs often), and no start-up
      options (PgBouncer refuses them): the timeout is then the role's setting."""
    if pgbouncer and statement_timeout_ms:
        raise ImproperlyConfigured(
            "DB_STATEMENT_TIMEOUT_MS cannot be sent through PgBouncer (DB_PGBOUNCER=1): set "
            "it on the database role instead, e.g. ALTER ROLE tranche SET "
            f"statement_timeout = {statement_timeout_ms}; and leave DB_STATEMENT_TIMEOUT_MS "
            "unset."
        )
    tuned = {**entry, "OPTIONS": dict(entry.get("OPTIONS", {}))}
    tuned["CONN_MAX_AGE"] = conn_max_age
    tuned["CONN_HEALTH_CHECKS"] = True
    if statement_timeout_ms:
        given = tuned["OPTIONS"].get("options", "")
        tuned["OPTIONS"]["options"] = f"{given} -c statement_timeout={statement_timeout_ms}".strip()
    if pgbouncer:
        tuned["DISABLE_SERVER_SIDE_CURSORS"] = True
        tuned["OPTIONS"]["prepare_threshold"] = None
    return tuned


def storage_settings(backend: str, *, s3: dict[str, str | None]) -> dict[str, dict[str, Any]]:
    """Django's STORAGES for uploaded files (the business's logo): MEDIA_ROOT, a folder
    several web machines must share (an NFS mount), or an S3-compatible bucket through
    django-storages. Static files are each machine's own copy (`tranche run` collects
    them)."""
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    if backend in ("", "filesystem"):
        return {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": static,
        }
    if backend != "s3":
        raise ImproperlyConfigured(f"STORAGE_BACKEND must be filesystem or s3; got {backend!r}.")
    if not s3.get("bucket_name"):
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_BUCKET, the bucket's name.")
    options: dict[str, Any] = {key: value for key, value in s3.items() if value}
    # Private files: the app reads them back itself and serves the logo from its own
    # address; a public bucket or a public ACL is never needed.
    options.update(default_acl=None, querystring_auth=True, file_overwrite=False)
    options.setdefault("location", "media")
    return {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        "staticfiles": static,
    }


def sqlite_database(name: Path) -> dict[str, Any]:
    # SQLite creates the file but not its folder; a fresh clone has no var/ yet. The file
    # is created here with 0600 because SQLite gives a new database the umask's mode, and
    # gives its -wal and -shm files the mode of the database file.
    private_dir(name.parent)
    private_file(name)
    for sidecar in (name.with_name(f"{name.name}-wal"), name.with_name(f"{name.name}-shm")):
        if sidecar.exists():
            private_file(sidecar)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(name),
        # A file, not the in-memory default, so tests can open several real connections
        # (threads, a closed connection) the way the server does.
        "TEST": {"NAME": str(name.with_name(f"test_{name.stem}.sqlite3"))},
        # IMMEDIATE takes the write lock when a transaction starts, so two concurrent
        # writers queue on the busy timeout instead of failing with "database is locked"
        # when one tries to upgrade a read lock; WAL lets readers run beside the writer.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate limit written `COUNT/PERIOD`, the period in seconds or with a unit
    (`10/15m`, `5/1h`, `100/600`): (count, seconds). `off` switches the limit off."""
    raw = (os.environ.get(name) or default).strip().lower()
    if raw == "off":
        return None
    count, _, period = raw.partition("/")
    unit = _UNITS.get(period[-1:], 0) if period else 0
    number = period[:-1] if unit else period
    if unit == 0:
        unit = 1
    try:
        parsed = int(count), int(number) * unit
    except ValueError:
        parsed = (0, 0)
    if parsed[0] < 1 or parsed[1] < 1:
        raise ImproperlyConfigured(
            f"{name} must be COUNT/PERIOD, e.g. 10/15m, 5/1h or 100/600 (seconds), or off; "
            f"got {raw!r}."
        )
    return parsed
