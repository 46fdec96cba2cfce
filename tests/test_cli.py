"""The `tranche` command: `run`, and the management commands createuser, token, demo,
worker and Django's own."""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.fakes.local_server import terminate
from tests.figures import record
from tests.helpers import Api, unchanged
from tranche.accounts.models import ApiToken, Customer, Role, User
from tranche.projects.models import Milestone, Project

pytestmark = pytest.mark.django_db


def command(*args: str) -> tuple[int, str, str]:
    """A management command as `tranche <args>` runs it: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_createuser_makes_a_user_who_can_sign_in(
    monkeypatch: pytest.MonkeyPatch, customer_a: Customer
) -> None:
    monkeypatch.setenv("TRANCHE_PASSWORD", "a long passphrase")
    code, out, _ = command(
        "createuser",
        "--email",
        "New@Acme.example",
        "--role",
        "customer",
        "--customer-id",
        str(customer_a.pk),
    )

    assert code == 0
    user = User.objects.get(email="new@acme.example")
    assert (user.role, user.customer_id) == (Role.CUSTOMER, customer_a.pk)
    assert "Created customer new@acme.example" in out
    assert (
        Api(None)
        .post("/api/auth/token", {"email": "new@acme.example", "password": "a long passphrase"})
        .status
        == 201
    )


LONG = "a long passphrase"


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        ("--email x@y.example --role customer", LONG, "needs a customer"),
        ("--email x@y.example --role customer --customer-id 999", LONG, "does not exist"),
        ("--email x@y.example --role staff --customer-id 1", LONG, "Only customer users"),
        ("--email not-an-email --role staff", LONG, "not an email"),
        ("--email x@y.example --role staff", "short", "too short"),
        ("--email admin@tranche.example --role staff", LONG, "already exists"),
    ],
)
def test_createuser_refuses_bad_input_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch,
    admin: User,
    args: str,
    password: str,
    message: str,
) -> None:
    monkeypatch.setenv("TRANCHE_PASSWORD", password)
    with unchanged():
        code, _, err = command("createuser", *args.split())
    assert code == 2
    assert message in err


def test_createuser_takes_no_password_argument_and_needs_one_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A password in argv is readable by every local user (ps) and lands in shell history."""
    monkeypatch.delenv("TRANCHE_PASSWORD", raising=False)
    with open(os.devnull) as not_a_terminal, unchanged():
        monkeypatch.setattr("sys.stdin", not_a_terminal)
        without = command("createuser", "--email", "x@y.example", "--role", "staff")
        with_argument = command(
            "createuser", "--email", "x@y.example", "--role", "staff", "--password", LONG
        )
    assert without[0] == 2
    assert "Set TRANCHE_PASSWORD" in without[2]
    assert with_argument[0] != 0
    assert "unrecognized arguments: --password" in with_argument[2]


def test_token_prints_a_working_token(staff: User) -> None:
    code, out, _ = command("token", "staff@tranche.example")
    assert code == 0
    token = out.strip()
    assert ApiToken.objects.filter(user=staff).count() == 1
    assert Api(token).get("/api/projects").status == 200


def test_token_for_an_unknown_email_fails() -> None:
    with unchanged():
        code, _, err = command("token", "ghost@tranche.example")
    assert code == 2
    assert "no active user" in err


def test_demo_is_idempotent_and_prints_the_logins() -> None:
    assert command("demo")[0] == 0
    counts = (
        User.objects.count(),
        Customer.objects.count(),
        Project.objects.count(),
        Milestone.objects.count(),
    )
    assert command("demo")[0] == 0
    code, output, _ = command("demo", "--if-empty")
    assert code == 0
    assert (
        User.objects.count(),
        Customer.objects.count(),
        Project.objects.count(),
        Milestone.objects.count(),
    ) == counts
    assert counts == (3, 3, 3, 9)
    for email in ("admin@example.com", "staff@example.com", "client@acme.example"):
        assert email in output
    project = Project.objects.get(name="Kitchen renovation")
    assert [str(m.billing_percentage) for m in project.milestones.filter(is_billable=True)] == [
        "30.00",
        "30.00",
        "40.00",
    ]
    client = Api(None).post(
        "/api/auth/token", {"email": "client@acme.example", "password": "demo-client-pass"}
    )
    assert client.status == 201


def test_demo_if_empty_leaves_a_real_database_alone(admin: User) -> None:
    with unchanged():
        code, out, _ = command("demo", "--if-empty")
    assert code == 0
    assert "not loaded" in out


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "HTTPS"}
    }
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "tranche.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """What a deployment sets: DEBUG off, HTTPS on, a real secret, its own host name,
    behind one TLS-terminating proxy."""
    return {
        "DEBUG": "0",
        "HTTPS": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BASE_URL": "https://portal.harbour-build.test",
        "ALLOWED_HOSTS": "portal.harbour-build.test",
        "TRUST_X_FORWARDED_PROTO": "1",
        "TRUSTED_PROXY_COUNT": "1",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3",
        **overrides,
    }


CHECK_ISSUE = re.compile(r"\((?:[\w.]+)\.[EWIC]\d+\)")


def complete_production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """production_env plus what `check --deploy` also asks of a production install:
    PostgreSQL (never connected to by `check`), SMTP and Stripe."""
    return production_env(
        tmp_path,
        DATABASE_URL="postgresql:///tranche",
        EMAIL_HOST="smtp.mailer.test",
        DEFAULT_FROM_EMAIL="Harbour Build Co <billing@harbour-build.test>",
        STRIPE_SECRET_KEY="sk_live_abc",
        STRIPE_PUBLISHABLE_KEY="pk_live_def",
        STRIPE_WEBHOOK_SECRET="whsec_ghi",
        PAYMENTS_SANDBOX="0",
        **overrides,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_with_debug_off_and_https_on(tmp_path: Path) -> None:
    result = run_cli(
        "check", "--deploy", "--fail-level", "WARNING", env=complete_production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    issues = CHECK_ISSUE.findall(result.stdout + result.stderr)
    assert issues == []
    record("limits", deploy_check_warnings=len(issues))


@pytest.mark.slow
def test_check_deploy_warns_when_https_is_off(tmp_path: Path) -> None:
    """The clean result above is the settings', not a check that looks at nothing: with
    HTTPS off (local http development) the same check names what production needs."""
    result = run_cli(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=complete_production_env(tmp_path, HTTPS="0"),
    )
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


@pytest.mark.slow
def test_check_deploy_fails_on_a_laptop_configuration_and_names_each_variable(
    tmp_path: Path,
) -> None:
    """`make run`'s settings are not a production install's: no HTTPS, SQLite, emails to
    files, no payments. Each of Tranche's apps says what to set (core, notifications,
    billing: their checks are registered when the apps load)."""
    result = run_cli(
        "check",
        "--deploy",
        env={
            "DEBUG": "0",
            "VAR_DIR": str(tmp_path),
            "BASE_URL": "https://portal.example.com",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PAYMENTS_SANDBOX": "0",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert set(CHECK_ISSUE.findall(output)) >= {
        "(tranche.E004)",
        "(tranche.W001)",
        "(tranche.E101)",
        "(tranche.E201)",
    }
    assert "set HTTPS=1" in output
    assert "Set EMAIL_HOST" in output
    assert "Set STRIPE_SECRET_KEY" in output


@pytest.mark.slow
def test_migrate_makes_the_cache_table_the_rate_limits_count_in(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    assert run_cli("migrate", "--verbosity", "0", env=env).returncode == 0
    database = sqlite3.connect(tmp_path / "deploy.sqlite3")
    try:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    finally:
        database.close()
    assert "tranche_cache" in tables
    # Migrating again (every `tranche run` does) leaves it be.
    assert run_cli("migrate", "--verbosity", "0", env=env).returncode == 0


@pytest.mark.slow
def test_without_a_secret_key_and_with_debug_off_the_process_refuses_to_start(
    tmp_path: Path,
) -> None:
    result = run_cli("check", env={"DEBUG": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.slow
def test_on_the_default_sqlite_a_secret_key_is_made_and_kept_under_var(tmp_path: Path) -> None:
    env = {"DEBUG": "0", "VAR_DIR": str(tmp_path)}
    assert run_cli("check", env=env).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert run_cli("check", env=env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be one of"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must start with"),
        ({"DEBUG": "1", "BASE_URL": "portal.example.com"}, "BASE_URL must be an absolute"),
        (
            {"DEBUG": "1", "LOGIN_FAILURE_LIMIT": "many"},
            "LOGIN_FAILURE_LIMIT must be a whole number",
        ),
        (
            {"DEBUG": "1", "RATE_LIMIT_SIGN_IN_ADDRESS": "ten a minute"},
            "RATE_LIMIT_SIGN_IN_ADDRESS must be COUNT/PERIOD",
        ),
        ({"DEBUG": "1", "SESSION_IDLE_MINUTES": "0"}, "SESSION_IDLE_MINUTES"),
    ],
)
def test_bad_settings_stop_the_process_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_cli("check", env={"VAR_DIR": str(tmp_path), **env})
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_delivers_queued_email_through_the_database_queue(
    tmp_path: Path, settings: Any, admin: User, customer_a: Customer
) -> None:
    """The email task goes through django-tasks-db's queue, and `tranche worker --once`
    (a separate process) runs it; the file backend writes the message under VAR_DIR."""
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    from tests.billing.helpers import draft_for
    from tests.factories import make_project
    from tranche.billing.services.sending import invoice_send
    from tranche.notifications.models import OutboxEmail

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    draft = draft_for(make_project(actor=admin, customer=customer_a), 1, admin)
    invoice_send(actor=admin, invoice_id=draft.pk)
    assert OutboxEmail.objects.get().status == "pending"
    assert DBTaskResult.objects.filter(task_path__endswith="deliver_email").count() == 1

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        url = f"sqlite:///{db['NAME']}"
    result = run_cli(
        "worker",
        "--once",
        env={
            "DATABASE_URL": url,
            "SECRET_KEY": "x" * 50,
            "VAR_DIR": str(tmp_path),
            "TASKS_IMMEDIATE": "0",
        },
    )

    assert result.returncode == 0, result.stderr
    assert OutboxEmail.objects.get().status == "sent"
    [written] = list((tmp_path / "mail").iterdir())
    assert "accounts@acme.example" in written.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_env(tmp_path: Path) -> dict[str, str]:
    return {"DEBUG": "0", "VAR_DIR": str(tmp_path), "PAYMENTS_SANDBOX": "1", "TICK_MINUTES": "60"}


@pytest.mark.slow
def test_run_on_a_taken_port_stops_at_once_with_an_error_and_never_says_serving(
    tmp_path: Path,
) -> None:
    """It used to wait on the worker forever after gunicorn failed to bind."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_cli("run", "--port", str(port), env=_run_env(tmp_path))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "serving" not in result.stdout


@pytest.mark.slow
def test_run_no_migrate_refuses_a_database_that_lacks_migrations_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """The systemd unit's `run --no-migrate`: with several web machines the operator
    migrates once (docs/deploy.md); a machine started before that must not serve code
    whose tables are not there, nor migrate behind the operator's back."""
    env = {
        **_run_env(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3",
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    result = run_cli("run", "--no-migrate", "--no-worker", "--port", str(_free_port()), env=env)

    assert result.returncode == 1
    assert "the database is not migrated" in result.stderr
    assert "run `tranche migrate` first" in result.stderr
    assert "serving" not in result.stdout
    database = sqlite3.connect(tmp_path / "fresh.sqlite3")
    try:
        assert database.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        database.close()


def _gone(pid: int) -> bool:
    """No such process, or only its zombie, waiting for a parent to read its exit code."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


@pytest.mark.slow
def test_run_says_serving_once_it_answers_and_stops_everything_when_a_child_dies(
    tmp_path: Path,
) -> None:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "HTTPS", "TASKS_IMMEDIATE"}
    }
    env.update(_run_env(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "tranche.cli", "run", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    groups: list[int] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        while line and "serving" not in line:
            line = process.stdout.readline()
        assert f"serving on http://127.0.0.1:{port}/" in line
        # Said only once the server answers: the health check succeeds right away.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as answer:
            assert answer.status == 200

        groups = _children(process.pid)  # each child leads its own process group
        _web, worker = sorted(groups)
        # The worker starts its db_worker process as it boots, which may be a moment after
        # the web server answers.
        deadline = time.monotonic() + 30
        while not (task_queue := _children(worker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert task_queue
        os.kill(worker, signal.SIGKILL)

        assert process.wait(timeout=30) == 128 + signal.SIGKILL
        # Its output ends only once no process is left holding it open.
        _, errors = process.communicate(timeout=10)
        assert "the worker exited" in errors
        # Nothing is left behind: the dead worker's own child was stopped with it.
        for pid in task_queue:
            assert _gone(pid)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
    finally:
        # Whatever failed above, leave no server behind: the children run in process
        # groups of their own, so killing `run` alone would orphan them.
        if process.poll() is None:
            terminate(process, grace=30)
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
