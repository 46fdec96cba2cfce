"""Flaw 5: dates are bounded where they enter, and the reminder arithmetic survives any
date already stored (a due date of 9999-12-31 used to stop every periodic pass)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for, sent_invoice_guard_lifted
from tests.helpers import Api, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.mark.parametrize(
    "due_date",
    ["9999-12-31", (TODAY + timedelta(days=366 * 5 + 1)).isoformat(), "1999-12-31", "0001-01-01"],
)
def test_an_admin_cannot_set_a_draft_due_date_far_from_today(
    as_: Callable[[str], Api], project_a: Project, admin: User, due_date: str
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    with unchanged():
        response = api.patch(
            f"/api/projects/{project_a.pk}/invoices/{draft.pk}", {"due_date": due_date}
        )
    assert (response.status, response.body["code"]) == (422, "validation_error")
    assert response.body["detail"].startswith("Invalid request: due_date: ")


def test_an_admin_may_set_a_due_date_a_few_years_ahead(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    due = (TODAY + timedelta(days=366 * 4)).isoformat()
    response = as_("admin").patch(
        f"/api/projects/{project_a.pk}/invoices/{draft.pk}", {"due_date": due}
    )
    assert (response.status, response.body["due_date"]) == (200, due)


@pytest.mark.parametrize("planned_date", ["9999-12-31", "1999-12-31", "0001-01-01"])
def test_staff_cannot_plan_a_milestone_at_an_absurd_date(
    as_: Callable[[str], Api], project_a: Project, planned_date: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_("staff")
    with unchanged():
        added = api.post(
            f"/api/projects/{project_a.pk}/milestones",
            {"title": "Snagging", "planned_date": planned_date},
        )
        edited = api.patch(
            f"/api/projects/{project_a.pk}/milestones/{milestone.pk}",
            {"planned_date": planned_date},
        )
    assert (added.status, added.body["code"]) == (422, "validation_error")
    assert (edited.status, edited.body["code"]) == (422, "validation_error")


@pytest.mark.parametrize("received_on", ["0001-01-01", "1999-12-31"])
def test_an_admin_cannot_record_a_payment_received_before_2000(
    as_: Callable[[str], Api], project_a: Project, admin: User, received_on: str
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    api = as_("admin")
    with unchanged():
        response = api.post(
            f"/api/projects/{project_a.pk}/invoices/{invoice.pk}/payments",
            {"amount": "10.00", "method": "cash", "received_on": received_on},
        )
    assert (response.status, response.body["code"]) == (422, "validation_error")
    assert "received_on" in response.body["detail"]


def _day(n: int) -> datetime:
    return timezone.now() + timedelta(days=n)


def test_invoices_stored_with_extreme_due_dates_do_not_stop_the_pass(
    project_a: Project, admin: User
) -> None:
    """Rows written before the API bounded dates (or by hand) keep their dates."""
    far = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    ancient = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    normal = invoice_send(actor=admin, invoice_id=draft_for(project_a, 3, admin).pk)
    with sent_invoice_guard_lifted():  # no service writes such dates, nor any on a sent invoice
        Invoice.objects.filter(pk=far.pk).update(due_date=date.max)
        Invoice.objects.filter(pk=ancient.pk).update(due_date=date.min)

    for n in (1, 11, 14, 21, 28):
        report = invoices_tick(now=_day(n))
        assert report.failed == 0
    assert run_periodic(now=_day(29)).endswith(", 0 failure(s)")

    statuses = dict(Invoice.objects.values_list("pk", "status"))
    assert statuses == {
        far.pk: InvoiceStatus.PENDING,
        ancient.pk: InvoiceStatus.OVERDUE,
        normal.pk: InvoiceStatus.OVERDUE,
    }
    reminded = {
        int(key.split(":")[1])
        for key in OutboxEmail.objects.filter(kind="invoice_reminder").values_list("key", flat=True)
    }
    # The ancient one's steps all came before it was sent; the far one's never come.
    assert reminded == {normal.pk}
