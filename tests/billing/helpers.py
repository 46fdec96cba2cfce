from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.drafts import milestone_complete
from tranche.projects.models import Project


def draft_for(project: Project, position: int, by: User) -> Invoice:
    milestone = project.milestones.get(position=position)
    done = milestone_complete(actor=by, project_id=project.pk, milestone_id=milestone.pk)
    assert done.invoice is not None
    return done.invoice


@contextmanager
def sent_invoice_guard_lifted() -> Iterator[None]:
    """For a test that plays a row written by hand or before the database guarded sent
    invoices (migration 0009): the guard's triggers are dropped inside the block and put
    back after it, in the test's own transaction."""
    guard = importlib.import_module("tranche.billing.migrations.0011_sent_invoice_guard")
    vendor = connection.vendor
    backward = {"sqlite": guard.SQLITE_BACKWARD, "postgresql": guard.PG_BACKWARD}[vendor]
    forward = {"sqlite": guard.SQLITE_FORWARD, "postgresql": guard.PG_FORWARD}[vendor]
    with connection.cursor() as cursor:
        for sql in backward:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in forward:
                cursor.execute(sql)
