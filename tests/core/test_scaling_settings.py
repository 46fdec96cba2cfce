"""The settings that let Tranche scale out are environment variables alone (docs/scaling.md):
the PostgreSQL connection (persistent and checked, a statement timeout, PgBouncer in
transaction mode), the task queue on Redis with RQ, uploads in an S3-compatible bucket.
Each is built here from the variables, in a fresh process as at start-up, and checked
without any network."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from tests.fakes.s3_server import s3_server
from tests.web.test_pages import signed_in
from tests.web.test_settings_pages import VALID, image, upload
from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.billing.pdf import document_context
from tranche.core.env import postgres_connection, storage_settings

ROOT = Path(__file__).resolve().parents[2]
PG = {"ENGINE": "django.db.backends.postgresql", "NAME": "tranche", "OPTIONS": {}}

# Prints the settings a process started with these variables would run with.
SHOW = """
import json
from tranche import settings as s
print(json.dumps({
    "database": s.DATABASES["default"],
    "tasks": s.TASKS,
    "rq_queues": getattr(s, "RQ_QUEUES", None),
    "apps": s.INSTALLED_APPS,
    "storages": s.STORAGES,
    "media_root": str(s.MEDIA_ROOT),
}))
"""


def settings_with(tmp_path: Path, **variables: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "S3_", "TASKS"))}
    env.update(PYTHONPATH=str(ROOT), VAR_DIR=str(tmp_path), TASKS_IMMEDIATE="0", **variables)
    result = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ImproperlyConfigured(result.stderr.strip().splitlines()[-1])
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


# --- PostgreSQL ----------------------------------------------------------------------------


def test_a_production_connection_is_kept_checked_and_bounded_in_time() -> None:
    tuned = postgres_connection(
        {**PG, "OPTIONS": {"sslmode": "require"}},
        conn_max_age=60,
        statement_timeout_ms=30_000,
        pgbouncer=False,
    )

    assert (tuned["CONN_MAX_AGE"], tuned["CONN_HEALTH_CHECKS"]) == (60, True)
    assert tuned["OPTIONS"] == {"sslmode": "require", "options": "-c statement_timeout=30000"}
    assert "DISABLE_SERVER_SIDE_CURSORS" not in tuned


def test_behind_pgbouncer_nothing_outlives_a_transaction() -> None:
    tuned = postgres_connection(PG, conn_max_age=60, statement_timeout_ms=0, pgbouncer=True)

    assert tuned["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert tuned["OPTIONS"] == {"prepare_threshold": None}  # and no start-up options
    with pytest.raises(ImproperlyConfigured, match="ALTER ROLE tranche SET statement_timeout"):
        postgres_connection(PG, conn_max_age=60, statement_timeout_ms=5000, pgbouncer=True)


@pytest.mark.slow
def test_the_database_variables_reach_the_connection(tmp_path: Path) -> None:
    shown = settings_with(
        tmp_path,
        DATABASE_URL="postgresql://tranche@db.internal:6432/tranche",
        DB_CONN_MAX_AGE="0",
        DB_PGBOUNCER="1",
    )
    database = shown["database"]
    assert (database["HOST"], database["PORT"], database["CONN_MAX_AGE"]) == (
        "db.internal",
        "6432",
        0,
    )
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True

    timed = settings_with(
        tmp_path,
        DATABASE_URL="postgresql://tranche@db.internal/tranche",
        DB_STATEMENT_TIMEOUT_MS="15000",
    )["database"]
    assert (timed["CONN_MAX_AGE"], timed["CONN_HEALTH_CHECKS"]) == (60, True)
    assert timed["OPTIONS"]["options"] == "-c statement_timeout=15000"


# --- the task queue ------------------------------------------------------------------------


@pytest.mark.slow
def test_tasks_move_to_redis_with_rq_by_configuration_alone(tmp_path: Path) -> None:
    default = settings_with(tmp_path)
    assert default["tasks"]["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    assert default["rq_queues"] is None

    shown = settings_with(tmp_path, TASKS_BACKEND="rq", REDIS_URL="redis://cache.internal:6379/2")

    assert shown["tasks"] == {
        "default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}
    }
    assert shown["rq_queues"] == {
        "default": {"URL": "redis://cache.internal:6379/2", "DEFAULT_TIMEOUT": 600}
    }
    # The same apps, so the same migrations, whichever queue: switching needs no migrate.
    assert shown["apps"] == default["apps"]
    with pytest.raises(ImproperlyConfigured, match="TASKS_BACKEND=rq needs REDIS_URL"):
        settings_with(tmp_path, TASKS_BACKEND="rq")
    # A wrong URL is refused without being shown: it may carry a password.
    with pytest.raises(ImproperlyConfigured, match="needs REDIS_URL") as refused:
        settings_with(tmp_path, TASKS_BACKEND="rq", REDIS_URL="http://:s3cret-pw@cache:6379")
    assert "s3cret-pw" not in str(refused.value)
    with pytest.raises(ImproperlyConfigured, match="TASKS_BACKEND must be database or rq"):
        settings_with(tmp_path, TASKS_BACKEND="celery")


def test_the_worker_runs_the_queue_of_the_configured_backend(settings: Any) -> None:
    from tranche.billing.management.commands.worker import queue_command

    settings.TASKS_BACKEND = "database"
    assert queue_command(once=False)[3:] == ["db_worker", "--no-startup-delay", "--interval", "1"]
    settings.TASKS_BACKEND = "rq"
    assert queue_command(once=False)[3:] == [
        "rqworker",
        "--job-class",
        "django_tasks_rq.Job",
        "default",
    ]
    assert "--burst" in queue_command(once=True)


# --- uploads -------------------------------------------------------------------------------


def test_uploads_go_to_a_bucket_by_configuration_alone() -> None:
    from storages.backends.s3 import S3Storage

    storages = storage_settings(
        "s3",
        s3={
            "bucket_name": "harbour-media",
            "endpoint_url": "https://objects.example.net",
            "region_name": "eu-west-1",
            "access_key": "AKIAEXAMPLE",
            "secret_key": "example-secret",
            "location": None,
        },
    )
    default = storages["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"

    # Built as Django builds it; nothing here reaches the network (URLs are signed locally).
    storage = S3Storage(**default["OPTIONS"])
    assert (storage.bucket_name, storage.location, storage.default_acl) == (
        "harbour-media",
        "media",
        None,
    )
    url = storage.url("branding/logo-1.png")
    assert url.startswith("https://objects.example.net/harbour-media/media/branding/logo-1.png?")
    assert "X-Amz-Signature=" in url or "Signature=" in url  # private: signed, expiring links


def test_a_bucket_needs_its_name_and_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="S3_BUCKET"):
        storage_settings("s3", s3={"bucket_name": None})
    with pytest.raises(ImproperlyConfigured, match="filesystem or s3"):
        storage_settings("ftp", s3={})
    folder = storage_settings("filesystem", s3={})["default"]
    assert folder == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


@pytest.mark.slow
def test_the_storage_variables_reach_the_settings(tmp_path: Path) -> None:
    shared = tmp_path / "shared-media"
    assert settings_with(tmp_path, MEDIA_ROOT=str(shared))["media_root"] == str(shared)
    shown = settings_with(tmp_path, STORAGE_BACKEND="s3", S3_BUCKET="harbour-media")
    assert shown["storages"]["default"]["OPTIONS"]["bucket_name"] == "harbour-media"


@pytest.mark.slow
@pytest.mark.django_db
def test_the_logo_is_read_through_the_storage_never_from_a_local_path(
    admin: User, settings: Any, tmp_path: Path
) -> None:
    """With uploads in an S3-compatible bucket (a real S3 server on 127.0.0.1), the logo
    is saved there and nowhere on this machine, then served and put on invoices from it:
    any web machine can do either."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with s3_server() as s3:
        bucket = s3.bucket("harbour-media")
        settings.STORAGES = s3.storages(bucket, settings.STORAGES)
        png = image("PNG")
        signed_in(admin).post("/settings/", {**VALID, "logo": upload(png)})

        profile = business_profile()
        assert profile.logo_name.startswith("branding/logo-")
        assert s3.objects(bucket) == {f"media/{profile.logo_name}": png}
        assert not settings.MEDIA_ROOT.exists()
        served = Client().get(profile.logo_url)
        assert served.status_code == 200
        assert b"".join(served.streaming_content) == png  # type: ignore[attr-defined]
        assert str(document_context()["logo_src"]) == (
            "data:image/png;base64," + base64.b64encode(png).decode()
        )


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the statement timeout is PostgreSQL's",
)
def test_the_statement_timeout_ends_a_long_query_but_never_a_migration(tmp_path: Path) -> None:
    """DB_STATEMENT_TIMEOUT_MS reaches the server and ends a statement that runs longer;
    `tranche migrate` (like backup and restore) runs without it, so a migration that
    builds an index on a large table is not cut off half way."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    server = urlsplit(os.environ["DATABASE_URL"])
    name = f"tranche_timeout_{secrets.token_hex(4)}"
    admin = urlunsplit(server._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "S3_", "TASKS"))}
    env.update(
        PYTHONPATH=str(ROOT),
        VAR_DIR=str(tmp_path),
        DATABASE_URL=urlunsplit(server._replace(path=f"/{name}", query="")),
        DB_STATEMENT_TIMEOUT_MS="1",
    )

    def tranche(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tranche.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    try:
        migrated = tranche("migrate", "--verbosity", "0")
        assert migrated.returncode == 0, migrated.stderr[-2000:]

        slow = (
            "from django.db import connection; connection.cursor().execute('SELECT pg_sleep(0.2)')"
        )
        ended = tranche("shell", "-c", slow)
        assert ended.returncode != 0
        assert "canceling statement due to statement timeout" in ended.stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
