"""`tranche backup` and `tranche restore`, run as the real commands in subprocesses: a
database holding every kind of object is backed up, restored into a new database (on
PostgreSQL a second database, on SQLite a second file) and compared with the original
table by table, row by row, schema included; the uploaded files are compared by content.

The tables compared are every table of the database, read with the driver itself rather
than the ORM: every model of the Tranche apps, Django's auth permissions, content types,
sessions, admin log and migrations, django-axes' attempts, django-otp's devices, the task
queue's results, the two cache tables; on SQLite also `sqlite_sequence`, on PostgreSQL the
sequences' current values, so ids continue after a restore where they stopped."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.billing import stripe_events
from tests.factories import enable_two_factor, make_project
from tests.fakes.s3_server import s3_server
from tranche.accounts.models import Customer, Role, User
from tranche.accounts.services import token_create, token_revoke, user_create
from tranche.billing.models import Invoice, InvoiceStatus, PaymentMethod
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import refund_record_manual
from tranche.billing.webhooks import webhook_receive
from tranche.core.backup import sha256_of
from tranche.notifications.delivery import outbox_deliver_due_report
from tranche.projects.amendment import ScheduleChange
from tranche.projects.services import project_set_retainage
from tranche.projects.services_change_orders import change_order_create
from tranche.web.demo import ADMIN, STAFF, load_demo

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


# --- running the commands ------------------------------------------------------------------


def tranche(
    *args: str, database_url: str, var_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tranche ARGS` as a production install runs it; `env`: more settings (a bucket's)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "VAR_DIR", "DEBUG", "PGPASSWORD"}
        and not k.startswith(("S3_", "STORAGE_"))
    }
    environment.update(
        DATABASE_URL=database_url,
        VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY="backup-test-secret-key-" + "x" * 30,
        PYTHONPATH=str(ROOT),
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "tranche.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def backup_of_the_test_database(
    tmp_path: Path, folder: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tranche backup` of the test database, its state in tmp_path/live, into `folder`
    (tmp_path/backup unless given)."""
    return tranche(
        "backup",
        str(folder or tmp_path / "backup"),
        database_url=database_url(source_name()),
        var_dir=tmp_path / "live",
        env=env,
    )


class Target:
    """A new, empty database beside the test database, of the same kind."""

    def __init__(self, tmp_path: Path, suffix: str) -> None:
        db = connection.settings_dict
        self.vendor = connection.vendor
        if self.vendor == "postgresql":
            self.name = f"{db['NAME']}_{suffix}"[:63]
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')
            self._admin(f'CREATE DATABASE "{self.name}"')
        else:
            self.name = str(tmp_path / f"{suffix}.sqlite3")
            sqlite3.connect(self.name).close()  # an empty database, as a new install has

    def _admin(self, sql: str) -> None:
        with psycopg.connect(**pg_params("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    @property
    def url(self) -> str:
        return database_url(self.name)

    def drop(self) -> None:
        if self.vendor == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def pg_params(dbname: str) -> dict[str, Any]:
    db = connection.settings_dict
    params = {
        "dbname": dbname,
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
    }
    return {k: v for k, v in params.items() if v}


def database_url(name: str) -> str:
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"


def table_count(database: Target) -> int:
    """How many tables `database` holds: 0 until something is restored into it."""
    if database.vendor == "sqlite":
        with contextlib.closing(sqlite3.connect(database.name)) as conn:
            return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    with psycopg.connect(**pg_params(database.name)) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        return int(row.fetchone()[0])  # type: ignore[index]


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    made = Target(tmp_path, "restored")
    yield made
    made.drop()


# --- reading a whole database with its own driver ----------------------------------------------


def everything(name: str) -> dict[str, Any]:
    """Every table's rows (sorted: a table has no order), and the schema: indexes,
    constraints, triggers, sequences."""
    if connection.vendor == "sqlite":
        return _sqlite_everything(name)
    return _pg_everything(name)


def _sqlite_everything(path: str) -> dict[str, Any]:
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = sorted(
            database.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
            key=repr,
        )
        tables = [row[1] for row in schema if row[0] == "table"]
        rows = {
            table: sorted(database.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tables
        }
    finally:
        database.close()
    return {"schema": schema, "rows": rows}


def _pg_everything(dbname: str) -> dict[str, Any]:
    with psycopg.connect(**pg_params(dbname)) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        rows = {
            table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tables
        }
        schema = {
            "indexes": sorted(
                (name, _without_casts(definition))
                for name, definition in conn.execute(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                )
            ),
            "constraints": sorted(
                (table, name, _without_casts(definition))
                for table, name, definition in conn.execute(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                )
            ),
            "triggers": sorted(
                conn.execute(
                    "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) "
                    "FROM pg_trigger WHERE NOT tgisinternal"
                ).fetchall()
            ),
            "functions": sorted(
                conn.execute(
                    "SELECT proname, prosrc FROM pg_proc "
                    "WHERE pronamespace = 'public'::regnamespace"
                ).fetchall()
            ),
            "sequences": sorted(
                conn.execute(
                    "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
                ).fetchall(),
                key=repr,
            ),
        }
    return {"schema": schema, "rows": rows}


def _without_casts(definition: str) -> str:
    """A CHECK of `x IN (…)`, or a partial index's WHERE, reads back from a restored dump
    with its casts placed differently (`ARRAY['a'::varchar, …]::text[]` becomes
    `ARRAY[('a'::varchar)::text, …]`): the same condition, compared without casts and
    parentheses."""
    return re.sub(r"::[a-z ]+(\[\])?|[()\s]", "", definition)


def source_name() -> str:
    return str(connection.settings_dict["NAME"])


def files_under(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- a database with every kind of object ------------------------------------------------------


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (41, 82, 204)).save(out, "PNG")
    return out.getvalue()


def fill_with_everything(settings: Any) -> None:
    """The demo business (customers, users, quotes in every state, projects, milestones,
    change orders, invoices draft to paid and overdue, payments, credit notes, tax lines,
    every trail), run through the database task queue, and then what the demo does not
    make: a cancelled invoice, a refund, sent and waiting emails, API tokens (one
    revoked), a two-factor device, a signed-in session, an uploaded logo, a refused
    sign-in in the security log and the lockout counters, Stripe events processed and
    waiting."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.STRIPE_WEBHOOK_SECRETS = [stripe_events.WEBHOOK_SECRET]
    now = timezone.now()
    load_demo(now=now)
    admin = User.objects.get(email=ADMIN.email)
    staff = User.objects.get(email=STAFF.email)

    outbox_deliver_due_report(now=now)  # the demo's emails leave; later ones wait

    draft = Invoice.objects.get(status=InvoiceStatus.DRAFT)
    invoice_cancel(actor=admin, invoice_id=draft.pk, reason="Billed with the handover instead")
    paid = Invoice.objects.filter(status=InvoiceStatus.PAID).order_by("pk").first()
    assert paid is not None
    refund_record_manual(
        actor=admin,
        invoice_id=paid.pk,
        amount=Decimal("100.00"),
        method=PaymentMethod.BANK_TRANSFER,
        paid_on=now.date(),
        reason="Goodwill for the delay",
        credit_invoice=True,
        now=now,
    )
    acme = Customer.objects.get(name="Acme Builders")
    porch = make_project(actor=admin, customer=acme, title="Porch")
    project_set_retainage(actor=admin, project_id=porch.pk, percentage=Decimal("5"), now=now)
    change_order_create(
        actor=admin,
        project_id=porch.pk,
        title="A snagging visit",
        schedule=[ScheduleChange(None, "Snagging visit", False, None)],
        now=now,
    )

    token_create(user=admin)
    token_revoke(token=token_create(user=staff), actor=admin)
    enable_two_factor(staff)

    office = user_create(
        email="office@harbour.example", password="a long passphrase", role=Role.ADMIN
    )
    browser = Client()
    assert (
        browser.post(
            "/login/", {"username": office.email, "password": "a long passphrase"}
        ).status_code
        == 302
    )
    response = browser.post(
        "/settings/",
        {
            "name": "Harbour Build Co",
            "price_mode": "exclusive",
            "logo": SimpleUploadedFile("logo.png", png(), content_type="image/png"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    Client().post(
        "/api/auth/token",
        {"email": ADMIN.email, "password": "not the password"},
        content_type="application/json",
    )

    for payload in (
        stripe_events.event("customer.created", {"id": "cus_1", "object": "customer"}),
        stripe_events.intent_succeeded("pi_not_ours_yet", 1000),
    ):
        webhook_receive(payload=payload.encode(), signature=stripe_events.sign(payload), now=now)
    # A second pass a day later: more reminders, the waiting event retried.
    outbox_deliver_due_report(now=now + timedelta(minutes=1))


TRANCHE_APPS = ("accounts", "sales", "projects", "billing", "notifications")


def test_a_backup_restored_into_a_new_database_has_every_row_schema_and_file(
    settings: Any, tmp_path: Path, target: Target
) -> None:
    settings.MEDIA_ROOT = tmp_path / "live" / "media"
    fill_with_everything(settings)
    before = everything(source_name())
    logo = files_under(tmp_path / "live" / "media")
    # Every kind of object is there: each Tranche model's table holds rows, and so do the
    # tables of sessions, lockouts, two-factor devices, the task queue and the cache.
    empty = sorted(
        model._meta.db_table
        for app in TRANCHE_APPS
        for model in apps.get_app_config(app).get_models()
        if not before["rows"][model._meta.db_table]
    )
    assert empty == []
    others = ["django_session", "axes_accessattempt", "otp_totp_totpdevice", "tranche_cache"]
    others.append("django_tasks_database_dbtaskresult")
    assert [table for table in others if not before["rows"][table]] == []
    [logo_name] = logo
    assert logo_name.startswith("branding/logo-")

    backed_up = backup_of_the_test_database(tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    assert_manifest_describes(tmp_path / "backup", before)

    restored = tranche(
        "restore", str(tmp_path / "backup"), database_url=target.url, var_dir=tmp_path / "new"
    )

    assert restored.returncode == 0, restored.stdout + restored.stderr
    after = everything(target.name)
    assert after["schema"] == before["schema"]
    assert sorted(after["rows"]) == sorted(before["rows"])
    for table, rows in before["rows"].items():
        assert after["rows"][table] == rows, f"{table} differs after the restore"
    assert files_under(tmp_path / "new" / "media") == logo
    tables = [table for table in before["rows"] if table != "sqlite_sequence"]
    total = sum(len(before["rows"][table]) for table in tables)
    assert f"Restore complete: {len(tables)} tables, {total} rows, all as in the backup." in (
        restored.stdout
    )
    assert "1 uploaded file(s) restored and checked." in restored.stdout


def assert_manifest_describes(folder: Path, before: dict[str, Any]) -> None:
    """The manifest: when, which version, which database and migrations, how many rows in
    each table, and a digest of every file beside it; the folder is for its owner only."""
    manifest = json.loads((folder / "manifest.json").read_text())
    database = manifest["database"]
    assert database["vendor"] == connection.vendor
    assert database["tables"] == {
        table: len(rows) for table, rows in before["rows"].items() if table != "sqlite_sequence"
    }
    applied = _applied()
    assert database["migrations"] == {
        app: max(name for label, name in applied if label == app) for app, _ in applied
    }
    assert manifest["format"] == 1
    assert manifest["tranche_version"] == metadata.version("tranche")
    made = datetime.fromisoformat(manifest["created_at"])
    assert timedelta(0) <= timezone.now() - made < timedelta(minutes=5)
    assert manifest["git_commit"] is None or len(manifest["git_commit"]) == 40
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert sorted([*manifest["files"], "manifest.json"]) == on_disk
    assert database["file"] in manifest["files"]
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(folder / name)
    [logo] = [name for name in manifest["files"] if name.startswith("media/")]
    assert logo.startswith("media/branding/logo-")
    assert folder.stat().st_mode & 0o077 == 0


def _applied() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations")
        return list(cursor.fetchall())


def test_uploads_kept_in_a_bucket_are_backed_up_and_restored_into_a_new_bucket(
    settings: Any, tmp_path: Path, target: Target
) -> None:
    """With STORAGE_BACKEND=s3 there is no MEDIA_ROOT to copy: the backup reads the
    bucket, and the restore writes a new one, through the same storage the app uses."""
    with s3_server() as s3:
        live, fresh = s3.bucket("harbour-live"), s3.bucket("harbour-restored")
        settings.STORAGES = s3.storages(live, settings.STORAGES)
        settings.MEDIA_ROOT = tmp_path / "live" / "media"
        admin = User.objects.create(email="admin@tranche.example", role=Role.ADMIN)
        browser = Client()
        browser.force_login(admin)
        uploaded = browser.post(
            "/settings/",
            {
                "name": "Harbour Build Co",
                "price_mode": "exclusive",
                "logo": SimpleUploadedFile("logo.png", png(), content_type="image/png"),
            },
        )
        assert uploaded.status_code == 302
        in_bucket = s3.objects(live)
        [key] = in_bucket
        assert key.startswith("media/branding/logo-")
        assert in_bucket[key] == png()
        assert not settings.MEDIA_ROOT.exists()  # nothing on this machine's disk

        backed_up = backup_of_the_test_database(tmp_path, env=s3.env(live))
        assert backed_up.returncode == 0, backed_up.stderr
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        name = key.removeprefix("media/")
        assert manifest["files"][f"media/{name}"]["sha256"] == sha256_of(
            tmp_path / "backup" / "media" / name
        )

        def restore_into(database: Target) -> subprocess.CompletedProcess[str]:
            return tranche(
                "restore",
                str(tmp_path / "backup"),
                database_url=database.url,
                var_dir=tmp_path / "new",
                env=s3.env(fresh),
            )

        restored = restore_into(target)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "1 uploaded file(s) restored and checked." in restored.stdout
        assert s3.objects(fresh) == in_bucket
        assert not (tmp_path / "new" / "media").exists()

        # Into another empty database, but a bucket holding other contents under that
        # name: refused before anything is written, the bucket's file left as it was.
        s3.client().put_object(Bucket=fresh, Key=key, Body=b"another logo")
        second = Target(tmp_path, "second")
        try:
            refused = restore_into(second)
            assert refused.returncode != 0
            output = refused.stdout + refused.stderr
            assert "exist with other contents" in output
            assert name in output
            assert "nothing was changed" in output
            assert s3.objects(fresh)[key] == b"another logo"
            assert table_count(second) == 0
        finally:
            second.drop()


# --- what restore refuses ----------------------------------------------------------------------


@pytest.fixture
def small_backup(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "live" / "media"
    admin = User.objects.create(email="admin@tranche.example", role=Role.ADMIN)
    make_project(
        actor=admin, customer=Customer.objects.create(name="Acme", billing_email="a@acme.example")
    )
    result = backup_of_the_test_database(tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "backup"


def test_restore_refuses_a_database_that_holds_data_and_changes_nothing(
    small_backup: Path, tmp_path: Path
) -> None:
    before = everything(source_name())

    result = tranche(
        "restore",
        str(small_backup),
        database_url=database_url(source_name()),
        var_dir=tmp_path / "live",
    )

    assert result.returncode != 0
    assert "The target database is not empty (rows in accounts_customer" in result.stderr
    assert "nothing was changed" in result.stderr
    assert everything(source_name()) == before


def test_restore_refuses_a_damaged_backup_before_touching_the_target(
    small_backup: Path, tmp_path: Path, target: Target
) -> None:
    dump = (
        small_backup / json.loads((small_backup / "manifest.json").read_text())["database"]["file"]
    )
    content = bytearray(dump.read_bytes())
    content[len(content) // 2] ^= 0xFF
    dump.write_bytes(bytes(content))
    before = everything(target.name)

    result = tranche(
        "restore", str(small_backup), database_url=target.url, var_dir=tmp_path / "new"
    )

    assert result.returncode != 0
    assert "The backup is damaged" in result.stderr
    assert dump.name in result.stderr
    assert everything(target.name) == before


def test_restore_refuses_a_folder_without_a_manifest(
    small_backup: Path, tmp_path: Path, target: Target
) -> None:
    """A backup interrupted half-way has no manifest (it is written last)."""
    (small_backup / "manifest.json").unlink()

    result = tranche(
        "restore", str(small_backup), database_url=target.url, var_dir=tmp_path / "new"
    )

    assert result.returncode != 0
    assert "has no manifest.json: it is not a backup, or its backup did not finish" in result.stderr


def test_backup_never_writes_into_a_folder_that_holds_something(
    small_backup: Path, tmp_path: Path
) -> None:
    before = {p: p.read_bytes() for p in small_backup.rglob("*") if p.is_file()}

    result = backup_of_the_test_database(tmp_path, small_backup)

    assert result.returncode != 0
    assert "already exists and is not empty" in result.stderr
    assert {p: p.read_bytes() for p in small_backup.rglob("*") if p.is_file()} == before


def test_a_backup_follows_no_link_out_of_the_uploads_folder(tmp_path: Path) -> None:
    """A link in MEDIA_ROOT, to a file or to a folder elsewhere on the machine, is not
    followed: what is outside the uploads never reaches a backup."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    media = tmp_path / "live" / "media"
    (media / "branding").mkdir(parents=True)
    (media / "branding" / "logo-1.png").write_bytes(png())
    (media / "linked-folder").symlink_to(outside, target_is_directory=True)
    (media / "branding" / "linked-file").symlink_to(outside / "passwd")

    result = backup_of_the_test_database(tmp_path)

    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "backup" / "media") == {"branding/logo-1.png": png()}


def test_a_bucket_key_no_backup_can_hold_is_refused_by_name(settings: Any, tmp_path: Path) -> None:
    """A key such as "media/./logo.png" (S3 keys may hold anything) ends the backup with a
    message naming it, and no folder is left looking like a finished backup."""
    with s3_server() as s3:
        bucket = s3.bucket("harbour-odd")
        s3.client().put_object(Bucket=bucket, Key="media/./logo.png", Body=png())

        result = backup_of_the_test_database(tmp_path, env=s3.env(bucket))

    assert result.returncode != 0
    assert (
        "An uploaded file has a name a backup cannot hold: a folder named '.' in "
        "'the top folder'. Rename that file."
    ) in result.stderr
    assert "RecursionError" not in result.stderr
    assert not (tmp_path / "backup" / "manifest.json").exists()
