"""A change order below what was invoiced on the pages: staff see the shortfall and a
button that approves it with credit notes; the customer's portal says staff approve it
and offers no signature form, and a forged approval from her changes nothing."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest

from tests.billing.change_order_helpers import change_order, line, sent
from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.billing.models import CreditNote
from tranche.notifications.change_orders import change_order_send
from tranche.projects.models import ChangeOrderStatus, Project

pytestmark = pytest.mark.django_db


def visible(response: object) -> str:
    page = html.unescape(response.content.decode())  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_staff_approve_with_credit_notes_from_the_page(
    project_a: Project, admin: User, staff: User
) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    client = signed_in(staff)
    page = visible(client.get(f"/change-orders/{order.pk}/"))
    assert "Record approval and credit $100.00" in page
    assert "cannot approve it online" in page

    client.post(f"/change-orders/{order.pk}/approve", {"issue_credit_note": "on"})

    order.refresh_from_db()
    assert order.status == ChangeOrderStatus.APPROVED
    [note] = CreditNote.objects.all()
    assert (note.invoice, note.amount) == (invoice, Decimal(100))
    done = visible(client.get(f"/change-orders/{order.pk}/"))
    assert "Invoiced, less credit notes" in done


def test_the_customer_is_told_staff_approve_it(
    project_a: Project, admin: User, alice: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    client = signed_in(alice)
    page = visible(client.get(f"/change-orders/{order.pk}/"))
    assert "cannot be approved online" in page
    assert "send you a credit note for the difference" in page
    assert "Your full name" not in page
    with unchanged():
        client.post(
            f"/change-orders/{order.pk}/approve",
            {"name": "Alice Archer", "agree": "on", "issue_credit_note": "on"},
        )
    order.refresh_from_db()
    assert order.status == ChangeOrderStatus.SENT
