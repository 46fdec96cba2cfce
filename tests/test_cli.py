"""The `tranche` command: createuser, token, demo, and Django passthrough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Api, unchanged
from tranche.accounts.models import ApiToken, Customer, Role, User
from tranche.cli import main
from tranche.projects.models import Milestone, Project

pytestmark = pytest.mark.django_db


def test_createuser_makes_a_user_who_can_sign_in(
    capsys: pytest.CaptureFixture[str], customer_a: Customer
) -> None:
    code = main(
        [
            "createuser",
            "--email",
            "New@Acme.example",
            "--password",
            "a long passphrase",
            "--role",
            "customer",
            "--customer-id",
            str(customer_a.pk),
        ]
    )

    assert code == 0
    user = User.objects.get(email="new@acme.example")
    assert (user.role, user.customer_id) == (Role.CUSTOMER, customer_a.pk)
    assert "Created customer new@acme.example" in capsys.readouterr().out
    assert (
        Api(None)
        .post("/api/auth/token", {"email": "new@acme.example", "password": "a long passphrase"})
        .status
        == 201
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--email", "x@y.example", "--password", "a long passphrase", "--role", "customer"],
            "needs a customer",
        ),
        (
            [
                "--email",
                "x@y.example",
                "--password",
                "a long passphrase",
                "--role",
                "customer",
                "--customer-id",
                "999",
            ],
            "does not exist",
        ),
        (
            [
                "--email",
                "x@y.example",
                "--password",
                "a long passphrase",
                "--role",
                "staff",
                "--customer-id",
                "1",
            ],
            "Only customer users",
        ),
        (
            ["--email", "not-an-email", "--password", "a long passphrase", "--role", "staff"],
            "not an email",
        ),
        (["--email", "x@y.example", "--password", "short", "--role", "staff"], "too short"),
        (
            [
                "--email",
                "admin@tranche.example",
                "--password",
                "a long passphrase",
                "--role",
                "staff",
            ],
            "already exists",
        ),
    ],
)
def test_createuser_refuses_bad_input_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], admin: User, args: list[str], message: str
) -> None:
    with unchanged():
        code = main(["createuser", *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_token_prints_a_working_token(capsys: pytest.CaptureFixture[str], staff: User) -> None:
    assert main(["token", "staff@tranche.example"]) == 0
    token = capsys.readouterr().out.strip()
    assert ApiToken.objects.filter(user=staff).count() == 1
    assert Api(token).get("/api/projects").status == 200


def test_token_for_an_unknown_email_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with unchanged():
        assert main(["token", "ghost@tranche.example"]) == 2
    assert "no active user" in capsys.readouterr().err


def test_demo_is_idempotent_and_prints_the_logins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    counts = (
        User.objects.count(),
        Customer.objects.count(),
        Project.objects.count(),
        Milestone.objects.count(),
    )
    assert main(["demo"]) == 0
    assert main(["demo", "--if-empty"]) == 0
    assert (
        User.objects.count(),
        Customer.objects.count(),
        Project.objects.count(),
        Milestone.objects.count(),
    ) == counts
    assert counts == (3, 2, 1, 4)
    output = capsys.readouterr().out
    for email in ("admin@example.com", "staff@example.com", "client@acme.example"):
        assert email in output
    project = Project.objects.get()
    assert [str(m.billing_percentage) for m in project.milestones.filter(is_billable=True)] == [
        "30.00",
        "30.00",
        "40.00",
    ]
    client = Api(None).post(
        "/api/auth/token", {"email": "client@acme.example", "password": "demo-client-pass"}
    )
    assert client.status == 201


def test_demo_if_empty_leaves_a_real_database_alone(
    capsys: pytest.CaptureFixture[str], admin: User
) -> None:
    with unchanged():
        assert main(["demo", "--if-empty"]) == 0
    assert "not loaded" in capsys.readouterr().out


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


def test_check_deploy_is_clean_with_debug_off_and_https_on(tmp_path: Path) -> None:
    result = run_cli(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "0",
            "HTTPS": "1",
            "SECRET_KEY": "k" * 20 + "-Lq9vX2mPz8rT4wY6uJ3nB5cF7hK1dS0aG",
            "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_a_secret_key_and_with_debug_off_the_process_refuses_to_start(
    tmp_path: Path,
) -> None:
    result = run_cli("check", env={"DEBUG": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_on_the_default_sqlite_a_secret_key_is_made_and_kept_under_var(tmp_path: Path) -> None:
    env = {"DEBUG": "0", "VAR_DIR": str(tmp_path)}
    assert run_cli("check", env=env).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert run_cli("check", env=env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


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
    ],
)
def test_bad_settings_stop_the_process_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_cli("check", env={"VAR_DIR": str(tmp_path), **env})
    assert result.returncode != 0
    assert message in result.stderr


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
    from tranche.billing.services import invoice_send
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
