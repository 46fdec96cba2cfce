"""The contract on the pages: staff read the Contract tab (lines, history, change
orders), draft a change order, edit it in the form and send it; the customer reads it
in their portal and approves it with a typed name, or declines it; strangers get 404;
the activity tab and the invoice document name the change orders."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from tests.billing.change_order_helpers import change_order, line
from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.billing.pdf import invoice_html
from tranche.billing.services.change_orders import change_order_approve
from tranche.notifications.change_orders import change_order_send
from tranche.projects.amendment import ScheduleChange
from tranche.projects.models import ChangeOrder, ChangeOrderStatus, Project

pytestmark = pytest.mark.django_db


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def visible(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_staff_draft_edit_and_send_a_change_order_from_the_contract_tab(
    project_a: Project, staff: User
) -> None:
    client = signed_in(staff)
    tab = text(client.get(f"/projects/{project_a.pk}/contract"))
    assert "Version 1" in tab
    assert "Build" in tab

    response = client.post(f"/projects/{project_a.pk}/change-orders/new", {"title": "Add a deck"})
    order = ChangeOrder.objects.get()
    assert response["Location"] == f"/change-orders/{order.pk}/"
    page = text(client.get(f"/change-orders/{order.pk}/"))
    assert "Edit the draft" in page
    milestones = list(project_a.milestones.order_by("position"))
    form = {
        "title": "Add a deck",
        "summary": "A deck behind the office.",
        "line_count": "2",
        "line-0-description": "Build",
        "line-0-quantity": "1",
        "line-0-unit_price": "1000.00",
        "line-0-tax_rate": "kept",
        "line-0-kept_rate": "|0.00",
        "line-1-description": "Deck",
        "line-1-quantity": "2",
        "line-1-unit_price": "100.00",
        "line-1-tax_rate": "",
        "item_count": "3",
    }
    for n, m in enumerate(milestones):
        form |= {
            f"item-{n}-milestone": str(m.pk),
            f"item-{n}-title": m.title,
            f"item-{n}-billable": "on",
            f"item-{n}-percentage": str(m.billing_percentage),
        }
    client.post(f"/change-orders/{order.pk}/edit", form)
    page = visible(text(client.get(f"/change-orders/{order.pk}/")))
    assert "$1,000.00 $1,200.00" in page  # contract total before and after
    assert "Step 3 $400.00 $480.00" in page

    client.post(f"/change-orders/{order.pk}/send")
    order.refresh_from_db()
    assert order.status == ChangeOrderStatus.SENT


def test_the_customer_approves_in_her_portal(project_a: Project, admin: User, alice: User) -> None:
    order = change_order(project_a, admin, line("Build", "1500.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    client = signed_in(alice)
    project_page = text(client.get(f"/projects/{project_a.pk}/"))
    assert "Waiting for your answer" in project_page
    page = visible(text(client.get(f"/change-orders/{order.pk}/")))
    assert "Approve this change order" in page
    assert "from $1,000.00 to $1,500.00" in page

    client.post(f"/change-orders/{order.pk}/approve", {"name": "Alice Archer", "agree": "on"})
    order.refresh_from_db()
    project_a.refresh_from_db()
    assert order.status == ChangeOrderStatus.APPROVED
    assert order.approved_name == "Alice Archer"
    assert order.approved_ip == "127.0.0.1"
    assert project_a.contract_version == 2
    assert "Approved by Alice Archer" in text(client.get(f"/change-orders/{order.pk}/"))


def test_the_customer_declines_with_a_comment(project_a: Project, admin: User, alice: User) -> None:
    order = change_order(project_a, admin, line("Build", "1500.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    signed_in(alice).post(f"/change-orders/{order.pk}/decline", {"reason": "Too much"})
    order.refresh_from_db()
    assert (order.status, order.decline_reason) == ("declined", "Too much")


def test_strangers_and_customers_get_nothing_they_should_not(
    project_a: Project, admin: User, alice: User, bob: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1500.00"))
    alice_client, bob_client = signed_in(alice), signed_in(bob)
    with unchanged():
        assert alice_client.get(f"/change-orders/{order.pk}/").status_code == 404  # a draft
        assert alice_client.get(f"/projects/{project_a.pk}/contract").status_code == 404
        assert alice_client.post(f"/change-orders/{order.pk}/send").status_code == 404
        assert alice_client.post(f"/change-orders/{order.pk}/edit", {}).status_code == 404
    change_order_send(actor=admin, change_order_id=order.pk)
    with unchanged():
        assert bob_client.get(f"/change-orders/{order.pk}/").status_code == 404
        assert (
            bob_client.post(
                f"/change-orders/{order.pk}/approve", {"name": "Bob Baker", "agree": "on"}
            ).status_code
            == 404
        )
        assert Client().get(f"/change-orders/{order.pk}/").status_code == 302  # to sign in


def test_history_activity_and_the_invoice_name_the_change_order(
    project_a: Project, admin: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1000.00"), line("Deck", "500.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    change_order_approve(actor=admin, change_order_id=order.pk)
    client = signed_in(admin)
    tab = visible(text(client.get(f"/projects/{project_a.pk}/contract")))
    assert "Version 2 · $1,500.00" in tab
    assert "Added “Deck” ($500.00)" in tab
    activity = visible(text(client.get(f"/projects/{project_a.pk}/activity")))
    assert "drafted change order CO-1" in activity
    assert "recorded the customer's approval of change order CO-1" in activity
    assert "contract version 2, $1,000.00 → $1,500.00" in activity
    invoice = draft_for(project_a, 1, admin)
    assert "version 2: quote + CO-1" in invoice_html(invoice)


def test_a_row_for_a_milestone_invoiced_since_is_explained_not_an_error(
    project_a: Project, admin: User
) -> None:
    second = project_a.milestones.get(position=2)
    order = change_order(
        project_a,
        admin,
        line("Build", "1200.00"),
        schedule=(ScheduleChange(second.pk, "Walls", True, second.billing_percentage),),
    )
    draft_for(project_a, 2, admin)
    page = text(signed_in(admin).get(f"/change-orders/{order.pk}/"))
    assert "'Step 2' is completed or invoiced" in page
