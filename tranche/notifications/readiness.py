"""Readiness: can this installation do its work now? Four checks, each ok or failed:

- database: a round trip to the database;
- migrations: no migration of the code is missing from the database (once all are
  applied the answer is kept: migrations are only ever added by a new release, which is
  a new process);
- worker: `tranche worker` has written its heartbeat within READY_WORKER_MINUTES
  (0 turns the check off, for a web machine that should not answer for the workers);
- email: no email is stuck failing: queued more than an hour ago, tried and failed, and
  still being retried. The outbox keeps no time of the first failure; an email is tried
  as soon as it is queued, so its queue time stands for it. An email given up on (after
  MAX_ATTEMPTS) is a person's business, on the Operations page, and no longer
  unreadiness: one mistyped address would otherwise keep the install unready for ever.

What `/api/ready` answers is only each check's name and outcome: the reason is logged,
never shown (an exception's text can name a host, a user, a path)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import QuerySet
from django.utils import timezone

from tranche.core.heartbeat import WORKER
from tranche.core.models import Heartbeat
from tranche.notifications.models import OutboxEmail, OutboxStatus

logger = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"  # not asked: the database it needs cannot be reached
OFF = "off"  # turned off by configuration

STUCK_AFTER = timedelta(hours=1)

_all_migrated = False


def _database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True


def _migrations() -> bool:
    global _all_migrated
    if not _all_migrated:
        executor = MigrationExecutor(connection)
        _all_migrated = not executor.migration_plan(executor.loader.graph.leaf_nodes())
    return _all_migrated


def _worker(now: datetime) -> bool:
    minutes = settings.READY_WORKER_MINUTES
    since = now - timedelta(minutes=minutes)
    return Heartbeat.objects.filter(name=WORKER, seen_at__gte=since).exists()


def stuck_emails(now: datetime) -> QuerySet[OutboxEmail]:
    """The emails that make the install unready (see the module's docstring)."""
    return OutboxEmail.objects.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING],
        attempts__gt=0,
        created_at__lt=now - STUCK_AFTER,
    ).exclude(last_error="")


def _email(now: datetime) -> bool:
    return not stuck_emails(now).exists()


def readiness(*, now: datetime | None = None) -> dict[str, str]:
    """Each check's outcome, in a fixed order."""
    now = now or timezone.now()
    outcomes: dict[str, str] = {}
    try:
        _database()
        outcomes["database"] = OK
    except DatabaseError:
        logger.warning("Readiness: the database cannot be reached", exc_info=True)
        outcomes["database"] = FAILED
    checks: dict[str, Callable[[], bool]] = {
        "migrations": _migrations,
        "worker": lambda: _worker(now),
        "email": lambda: _email(now),
    }
    for name, check in checks.items():
        if outcomes["database"] != OK:
            outcomes[name] = SKIPPED
            continue
        if name == "worker" and not settings.READY_WORKER_MINUTES:
            outcomes[name] = OFF
            continue
        try:
            outcomes[name] = OK if check() else FAILED
        except Exception:
            logger.exception("Readiness: the %s check raised", name)
            outcomes[name] = FAILED
    return outcomes
