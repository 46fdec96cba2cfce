"""`tranche check --deploy`: Tranche's own checks pass a complete production configuration
and name the variable to fix in a wrong one. Each case starts from the complete
configuration and changes one thing (tests/test_cli.py runs the command itself, and
tests/test_deploy.py runs it on deploy/tranche.env.example)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import ERROR, WARNING, CheckMessage, run_checks

from tranche.core.checks import DEVELOPMENT_KEY

POSTGRES = "django.db.backends.postgresql"
SQLITE = "django.db.backends.sqlite3"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def production(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What a correct /etc/tranche/tranche.env gives (docs/deploy.md, step 5). The
    database's engine is changed in place (the check reads only it; replacing DATABASES
    would reconfigure the connections of a test that uses none)."""
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", POSTGRES)
    settings.DEBUG = False
    settings.SECRET_KEY = "k3Jx9-production-secret-key-of-fifty-characters-or-more-0123"
    settings.VAR_DIR = tmp_path
    settings.HTTPS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXY_COUNT = 1
    settings.BASE_URL = "https://portal.harbour-build.test"
    settings.ALLOWED_HOSTS = ["portal.harbour-build.test", "127.0.0.1", "localhost"]
    settings.EMAIL_BACKEND = SMTP
    settings.EMAIL_HOST = "smtp.mailer.test"
    settings.EMAIL_PORT = 587
    settings.EMAIL_USE_TLS = True
    settings.DEFAULT_FROM_EMAIL = "Harbour Build Co <billing@harbour-build.test>"
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_live_def"
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_ghi"]
    settings.STRIPE_API_BASE = ""
    settings.PAYMENTS_SANDBOX = False
    return settings


def tranche_issues() -> dict[str, CheckMessage]:
    """Tranche's deploy checks' findings (Django's own security.* ones aside), by id."""
    found = run_checks(include_deployment_checks=True)
    return {m.id: m for m in found if m.id and m.id.startswith("tranche.")}


def test_a_complete_production_configuration_passes(production: Any) -> None:
    assert tranche_issues() == {}


@pytest.mark.parametrize(
    ("change", "expected", "level", "names"),
    [
        ({"SECRET_KEY": DEVELOPMENT_KEY}, "tranche.E001", ERROR, "SECRET_KEY"),
        ({"ENGINE": SQLITE}, "tranche.W001", WARNING, "postgresql://"),
        ({"ENGINE": "django.db.backends.mysql"}, "tranche.E003", ERROR, "DATABASE_URL"),
        ({"HTTPS": False}, "tranche.E004", ERROR, "HTTPS=1"),
        ({"SECURE_PROXY_SSL_HEADER": None}, "tranche.W002", WARNING, "TRUST_X_FORWARDED_PROTO"),
        ({"TRUSTED_PROXY_COUNT": 0}, "tranche.W003", WARNING, "TRUSTED_PROXY_COUNT=1"),
        ({"BASE_URL": "http://127.0.0.1:8000"}, "tranche.E005", ERROR, "BASE_URL"),
        ({"BASE_URL": "http://portal.harbour-build.test"}, "tranche.E006", ERROR, "https://"),
        ({"ALLOWED_HOSTS": ["other.harbour-build.test"]}, "tranche.E007", ERROR, "ALLOWED_HOSTS"),
        # Values left as deploy/tranche.env.example has them: named, a secret never shown.
        (
            {"SECRET_KEY": "replace-with-the-output-of-the-command-above-50-characters-or-more"},
            "tranche.E008",
            ERROR,
            "SECRET_KEY",
        ),
        (
            {
                "BASE_URL": "https://portal.example.com",
                "ALLOWED_HOSTS": ["portal.example.com"],
            },
            "tranche.E008",
            ERROR,
            "BASE_URL",
        ),
        ({"EMAIL_HOST": "smtp.example.com"}, "tranche.E008", ERROR, "EMAIL_HOST"),
        (
            {"DEFAULT_FROM_EMAIL": "Harbour Build Co <billing@example.com>"},
            "tranche.E008",
            ERROR,
            "DEFAULT_FROM_EMAIL",
        ),
        ({"STRIPE_SECRET_KEY": "sk_live_replace-me"}, "tranche.E008", ERROR, "STRIPE_SECRET"),
        ({"STRIPE_WEBHOOK_SECRETS": ["whsec_replace-me"]}, "tranche.E008", ERROR, "WEBHOOK"),
        (
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"},
            "tranche.E101",
            ERROR,
            "EMAIL_HOST",
        ),
        ({"EMAIL_PORT": 465}, "tranche.W101", WARNING, "587"),
        ({"EMAIL_USE_TLS": False}, "tranche.W102", WARNING, "EMAIL_USE_TLS=1"),
        (
            {"DEFAULT_FROM_EMAIL": "Tranche <billing@localhost>"},
            "tranche.W103",
            WARNING,
            "DEFAULT_FROM_EMAIL",
        ),
        (
            {"STRIPE_SECRET_KEY": "", "PAYMENTS_SANDBOX": False},
            "tranche.E201",
            ERROR,
            "PAYMENTS_SANDBOX=1",
        ),
        (
            {"STRIPE_SECRET_KEY": "", "PAYMENTS_SANDBOX": True},
            "tranche.W201",
            WARNING,
            "STRIPE_SECRET_KEY",
        ),
        ({"PAYMENTS_SANDBOX": True}, "tranche.W202", WARNING, "PAYMENTS_SANDBOX"),
        ({"STRIPE_PUBLISHABLE_KEY": ""}, "tranche.E202", ERROR, "pk_"),
        ({"STRIPE_PUBLISHABLE_KEY": "pk_test_def"}, "tranche.E203", ERROR, "same mode"),
        ({"STRIPE_WEBHOOK_SECRETS": []}, "tranche.E204", ERROR, "/api/webhooks/stripe"),
        (
            {"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_PUBLISHABLE_KEY": "pk_test_def"},
            "tranche.W203",
            WARNING,
            "sk_live_",
        ),
        ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "tranche.W204", WARNING, "STRIPE_API"),
    ],
)
def test_each_wrong_setting_is_named_with_how_to_fix_it(
    production: Any, change: dict[str, Any], expected: str, level: int, names: str
) -> None:
    for name, value in change.items():
        if name == "ENGINE":
            production.DATABASES["default"]["ENGINE"] = value  # restored by the fixture
        else:
            setattr(production, name, value)

    issues = tranche_issues()

    assert list(issues) == [expected]
    assert issues[expected].level == level
    assert names in f"{issues[expected].msg} {issues[expected].hint}"


def test_the_key_generated_for_a_local_install_is_refused(production: Any) -> None:
    """`tranche` makes VAR_DIR/secret_key only without SECRET_KEY and DATABASE_URL: one
    machine's key, which a second machine or a restore elsewhere would not share."""
    key = "generated-for-this-machine-only-by-the-tranche-command-0123456789"
    (Path(production.VAR_DIR) / "secret_key").write_text(key)
    assert tranche_issues() == {}

    production.SECRET_KEY = key

    assert list(tranche_issues()) == ["tranche.E002"]


def test_the_checks_run_only_for_a_deployment(production: Any) -> None:
    """A laptop's `tranche check` (no --deploy) stays quiet about HTTPS, SMTP and Stripe."""
    production.HTTPS = False
    production.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    production.STRIPE_SECRET_KEY = ""
    production.PAYMENTS_SANDBOX = False
    found = run_checks(include_deployment_checks=False)
    assert [m.id for m in found if m.id and m.id.startswith("tranche.")] == []


@pytest.mark.django_db
def test_the_models_pass_the_checks_migrate_runs_on_this_database() -> None:
    """`tranche migrate` (and `make run`) runs the model checks against the database: they
    print nothing on SQLite or PostgreSQL (an index with INCLUDE columns warned on every
    SQLite migrate, which has no such indexes)."""
    found = run_checks(databases=["default"])
    assert [(m.id, m.msg) for m in found] == []
