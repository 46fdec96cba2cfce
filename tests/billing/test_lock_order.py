"""Row locks are taken in one order everywhere (customer, project, milestone, invoice), so
two writers can never wait for each other. Editing a draft's amount used to lock the
invoice and then its project while reopening a milestone locked the project and then the
invoice: on PostgreSQL, the two together deadlocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, models, transaction

from tests.billing.helpers import draft_for
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.drafts import (
    invoice_update_draft,
    milestone_complete,
    milestone_reopen,
)
from tranche.core import db
from tranche.projects.models import Milestone, Project

ORDER: list[type[models.Model]] = [Customer, Project, Milestone, Invoice]


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models whose rows were locked, in order: every lock goes through lock_one."""
    taken: list[str] = []
    real = db.lock_one

    def recording(model: type[models.Model], pk: int, **options: Any) -> Any:
        taken.append(model.__name__)
        return real(model, pk, **options)

    monkeypatch.setattr(db, "lock_one", recording)
    for module in ("tranche.billing.locks", "tranche.projects.locks"):
        monkeypatch.setattr(f"{module}.lock_one", recording)
    return taken


def in_order(taken: list[str]) -> bool:
    ranks = [[m.__name__ for m in ORDER].index(name) for name in taken]
    return ranks == sorted(ranks)


@pytest.mark.django_db
def test_editing_a_drafts_amount_locks_the_project_before_the_invoice(
    project_a: Project, admin: User, locked: list[str]
) -> None:
    draft = draft_for(project_a, 1, admin)
    locked.clear()

    invoice_update_draft(actor=admin, invoice_id=draft.pk, amount=Decimal("250.00"))

    assert locked == ["Project", "Invoice"]


@pytest.mark.django_db
def test_completing_and_reopening_lock_the_project_before_the_invoice(
    project_a: Project, admin: User, locked: list[str]
) -> None:
    milestone = project_a.milestones.get(position=1)
    milestone_complete(actor=admin, project_id=project_a.pk, milestone_id=milestone.pk)
    milestone_reopen(actor=admin, project_id=project_a.pk, milestone_id=milestone.pk)

    assert locked == ["Project", "Project", "Invoice"]
    assert in_order(locked[1:])


def _waiting_on_locks() -> int:
    with connections["default"].cursor() as cursor:
        # Inside a transaction PostgreSQL keeps showing its first view of the activity.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return int(cursor.fetchone()[0])


def _wait_for(condition: Callable[[], bool], why: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"the writers never lined up: {why}"
        time.sleep(0.05)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has no row locks: it lets one writer in at a time, so it cannot deadlock",
)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_amount_edit_and_a_reopen_racing_on_postgresql_both_finish(
    project_a: Project, admin: User
) -> None:
    """The interleaving that deadlocked, forced: a third transaction holds the invoice row
    while the edit and then the reopen arrive; once it lets go, both must finish."""
    draft = draft_for(project_a, 1, admin)
    outcomes: dict[str, object] = {}

    def run(name: str, action: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                outcomes[name] = action()
            except Exception as exc:
                outcomes[name] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    with transaction.atomic():
        Invoice.objects.select_for_update().get(pk=draft.pk)
        edit = run(
            "edit",
            lambda: invoice_update_draft(
                actor=admin, invoice_id=draft.pk, amount=Decimal("250.00")
            ),
        )
        _wait_for(lambda: _waiting_on_locks() == 1, outcomes)
        reopen = run(
            "reopen",
            lambda: milestone_reopen(
                actor=admin, project_id=project_a.pk, milestone_id=draft.milestone_id or 0
            ),
        )
        _wait_for(lambda: _waiting_on_locks() == 2, outcomes)
    edit.join(30)
    reopen.join(30)

    assert not any(isinstance(o, Exception) for o in outcomes.values()), outcomes
    draft.refresh_from_db()
    # The edit went first, then the reopen cancelled the (edited) draft.
    assert (draft.amount, draft.status) == (Decimal("250.00"), InvoiceStatus.CANCELLED)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has no row locks: it lets one writer in at a time, so it cannot deadlock",
)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_completion_and_a_write_referencing_its_project_racing_on_postgresql_both_finish(
    project_a: Project, admin: User
) -> None:
    """The interleaving `make test-scale` met (two web servers, one customer): a payment
    wrote an invoice of the customer (the totals trigger took the customer's advisory lock)
    and then a row referring to a project (its foreign key check takes FOR KEY SHARE on the
    project's row), while a completion held that project's row and, making its draft,
    waited for the customer's lock. The project lock must not refuse a key share: a lock
    taken to serialise writers (FOR NO KEY UPDATE), not to delete the row."""
    milestone = project_a.milestones.get(position=1)
    outcomes: dict[str, object] = {}

    def complete() -> None:
        try:
            outcomes["complete"] = milestone_complete(
                actor=admin, project_id=project_a.pk, milestone_id=milestone.pk
            )
        except Exception as exc:
            outcomes["complete"] = exc
        finally:
            connections.close_all()

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # What the totals trigger does when this transaction writes an invoice.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('billing_invoicetotals'), %s)",
                [project_a.customer_id % 2147483648],
            )
            completing = threading.Thread(target=complete)
            completing.start()
            _wait_for(lambda: _waiting_on_locks() == 1, outcomes)  # holds the project
            # What a foreign key check on the project does.
            cursor.execute(
                "SELECT 1 FROM projects_project WHERE id = %s FOR KEY SHARE", [project_a.pk]
            )
    except Exception as exc:
        outcomes["referencing write"] = exc
    completing.join(30)

    assert not any(isinstance(o, Exception) for o in outcomes.values()), outcomes
    assert Invoice.objects.filter(milestone=milestone).count() == 1
