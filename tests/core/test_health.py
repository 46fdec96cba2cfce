"""/api/health (liveness: the process answers) and /api/ready (readiness: database,
migrations, the worker's heartbeat, no email stuck failing), as a load balancer and a
monitoring probe see them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from tests.helpers import Api
from tranche.core.heartbeat import WORKER, heartbeat_record
from tranche.notifications import readiness
from tranche.notifications.models import OutboxEmail, OutboxStatus

ALL_OK = {"database": "ok", "migrations": "ok", "worker": "ok", "email": "ok"}


@pytest.fixture
def unreachable_database() -> Iterator[None]:
    """Point the default connection at a database that cannot be reached (a closed port on
    PostgreSQL, a file in a missing folder on SQLite), then restore it."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT="9", OPTIONS={"connect_timeout": 2})
    else:
        connection.settings_dict["NAME"] = "/nonexistent-folder/tranche.sqlite3"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def email(**fields: Any) -> OutboxEmail:
    now = timezone.now()
    values: dict[str, Any] = {
        "key": f"test:{OutboxEmail.objects.count()}",
        "kind": "invoice_sent",
        "to": "accounts@acme.example",
        "subject": "Invoice INV-2026-00001",
        "body_text": "…",
        "next_attempt_at": now,
        "created_at": now,
    }
    return OutboxEmail.objects.create(**{**values, **fields})


@pytest.mark.django_db
def test_health_answers_without_asking_the_database(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = Api(None).get("/api/health")
    assert (response.status, response.body) == (200, {"status": "ok"})


@pytest.mark.django_db(transaction=True)
def test_health_stays_up_while_the_database_is_unreachable(unreachable_database: None) -> None:
    """A load balancer that took every web process out for the database's outage would
    turn a pause into downtime; readiness says the database is away."""
    response = Api(None).get("/api/health")
    assert (response.status, response.body) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_ready_when_every_check_passes() -> None:
    heartbeat_record(name=WORKER)
    response = Api(None).get("/api/ready")
    assert (response.status, response.body) == (
        200,
        {"status": "ready", "checks": ALL_OK, "failed": []},
    )


@pytest.mark.django_db
def test_not_ready_when_the_worker_was_never_seen_or_is_late(settings: Any) -> None:
    settings.READY_WORKER_MINUTES = 5
    never = Api(None).get("/api/ready")
    assert (never.status, never.body) == (
        503,
        {"status": "not_ready", "checks": {**ALL_OK, "worker": "failed"}, "failed": ["worker"]},
    )
    heartbeat_record(name=WORKER, now=timezone.now() - timedelta(minutes=6))
    assert Api(None).get("/api/ready").body["failed"] == ["worker"]
    heartbeat_record(name=WORKER, now=timezone.now() - timedelta(minutes=4))
    assert Api(None).get("/api/ready").status == 200


@pytest.mark.django_db
def test_the_worker_check_can_be_turned_off(settings: Any) -> None:
    settings.READY_WORKER_MINUTES = 0
    response = Api(None).get("/api/ready")
    assert (response.status, response.body["checks"]["worker"]) == (200, "off")


@pytest.mark.django_db
def test_not_ready_while_an_email_queued_over_an_hour_ago_keeps_failing() -> None:
    heartbeat_record(name=WORKER)
    now = timezone.now()
    failing = "SMTPServerDisconnected: Connection unexpectedly closed"
    # Failing, but queued 50 minutes ago; given up on (a person's business); sent after
    # failing once: none makes the install unready.
    email(created_at=now - timedelta(minutes=50), attempts=3, last_error=failing)
    email(
        created_at=now - timedelta(days=2),
        attempts=12,
        status=OutboxStatus.FAILED,
        last_error=failing,
    )
    email(created_at=now - timedelta(hours=3), attempts=2, status=OutboxStatus.SENT, last_error="")
    assert Api(None).get("/api/ready").status == 200

    stuck = email(created_at=now - timedelta(minutes=61), attempts=4, last_error=failing)
    response = Api(None).get("/api/ready")
    assert (response.status, response.body["failed"]) == (503, ["email"])
    # Nothing of the email or its error is shown to whoever asks.
    assert "SMTP" not in str(response.body)
    assert stuck.to not in str(response.body)

    OutboxEmail.objects.filter(pk=stuck.pk).update(status=OutboxStatus.SENT)
    assert Api(None).get("/api/ready").status == 200


@pytest.mark.django_db
def test_not_ready_while_a_migration_is_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat_record(name=WORKER)
    monkeypatch.setattr(readiness, "_all_migrated", False)
    MigrationRecorder.Migration.objects.filter(app="core", name="0001_heartbeat").delete()
    response = Api(None).get("/api/ready")
    assert (response.status, response.body["failed"]) == (503, ["migrations"])


@pytest.mark.django_db
def test_once_all_migrations_are_applied_the_answer_is_kept(
    django_assert_max_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    heartbeat_record(name=WORKER)
    monkeypatch.setattr(readiness, "_all_migrated", False)
    assert Api(None).get("/api/ready").status == 200
    # The database round trip, the heartbeat and the stuck emails: three queries, and
    # not the migration table any more.
    with django_assert_max_num_queries(3):
        assert Api(None).get("/api/ready").status == 200


@pytest.mark.django_db(transaction=True)
def test_not_ready_when_the_database_is_unreachable_and_nothing_of_why_is_shown(
    unreachable_database: None, caplog: pytest.LogCaptureFixture
) -> None:
    response = Api(None).get("/api/ready")
    assert (response.status, response.body) == (
        503,
        {
            "status": "not_ready",
            "checks": {
                "database": "failed",
                "migrations": "skipped",
                "worker": "skipped",
                "email": "skipped",
            },
            "failed": ["database", "migrations", "worker", "email"],
        },
    )
    # Why is in the log, for the operator.
    assert "Readiness: the database cannot be reached" in caplog.text
