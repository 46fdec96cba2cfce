"""The signed-in pages: customers see only their own projects."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.helpers import unchanged
from tranche.accounts.models import User
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "Sign in" in Client().get("/login/").content.decode()


def test_staff_see_every_project_with_its_schedule(
    staff: User, project_a: Project, project_b: Project
) -> None:
    page = signed_in(staff).get("/projects/").content.decode()
    assert "Kitchen for A" in page
    assert "Studio for B" in page
    detail = signed_in(staff).get(f"/projects/{project_a.pk}/").content.decode()
    assert "$300.00" in detail
    assert "$400.00" in detail


def test_a_customer_sees_only_their_own_projects(
    alice: User, project_a: Project, project_b: Project
) -> None:
    client = signed_in(alice)
    page = client.get("/projects/").content.decode()
    assert "Kitchen for A" in page
    assert "Studio for B" not in page
    assert client.get(f"/projects/{project_b.pk}/").status_code == 404
    assert client.get(f"/projects/{project_a.pk}/").status_code == 200


def test_a_wrong_password_on_the_sign_in_page_says_so(staff: User) -> None:
    response = Client().post("/login/", {"username": staff.email, "password": "nope"})
    assert response.status_code == 200
    assert "Email or password is incorrect." in response.content.decode()


def test_staff_complete_a_milestone_and_an_admin_sends_its_draft_from_the_pages(
    staff: User, admin: User, project_a: Project, after_commit: Any
) -> None:
    from django.core import mail

    from tranche.billing.models import Invoice

    milestone = project_a.milestones.get(position=1)
    staff_browser = signed_in(staff)
    response = staff_browser.post(f"/projects/{project_a.pk}/milestones/{milestone.pk}/complete")
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    page = staff_browser.get(f"/projects/{project_a.pk}/").content.decode()
    assert "Draft" in page
    assert "Send</button>" not in page  # staff may not send
    with unchanged():
        assert staff_browser.post(f"/invoices/{invoice.pk}/send").status_code == 404

    admin_browser = signed_in(admin)
    assert "Send</button>" in admin_browser.get("/financials/").content.decode()
    with after_commit(execute=True):
        sent = admin_browser.post(f"/invoices/{invoice.pk}/send", {"next": "/financials/"})
    assert sent["Location"] == "/financials/"
    invoice.refresh_from_db()
    assert invoice.status == "pending"
    assert len(mail.outbox) == 1
    assert "Invoice sent" in admin_browser.get("/financials/").content.decode()


def test_a_customer_cannot_complete_milestones_or_see_drafts_on_the_pages(
    alice: User, admin: User, project_a: Project
) -> None:
    from tranche.billing.services.drafts import milestone_complete

    billed = project_a.milestones.get(position=1)
    milestone_complete(actor=admin, project_id=project_a.pk, milestone_id=billed.pk)
    pending = project_a.milestones.get(position=2)
    browser = signed_in(alice)
    with unchanged():
        refused = browser.post(f"/projects/{project_a.pk}/milestones/{pending.pk}/complete")
    assert refused.status_code == 404
    page = browser.get(f"/projects/{project_a.pk}/").content.decode()
    assert "Mark complete" not in page
    assert "Payment for completed milestone" not in page
    financials = browser.get("/financials/")
    assert financials.status_code == 200
    shown = financials.content.decode()
    assert "Payment for completed milestone" not in shown
    # Nor the staff's view of drafts: no card, no filter, no instructions about them.
    assert "Drafts to review" not in shown
    assert "?status=draft" not in shown
    assert "creates a draft" not in browser.get("/financials/?status=paid").content.decode()


def test_an_admin_reopens_a_milestone_from_the_page_and_staff_cannot(
    staff: User, admin: User, project_a: Project
) -> None:
    from tranche.billing.models import Invoice
    from tranche.billing.services.drafts import milestone_complete

    milestone = project_a.milestones.get(position=1)
    milestone_complete(actor=staff, project_id=project_a.pk, milestone_id=milestone.pk)
    path = f"/projects/{project_a.pk}/milestones/{milestone.pk}/reopen"
    staff_browser = signed_in(staff)
    with unchanged():
        assert staff_browser.post(path).status_code == 404

    browser = signed_in(admin)
    assert browser.post(path).status_code == 302
    milestone.refresh_from_db()
    assert milestone.status == "pending"
    assert Invoice.objects.get().status == "cancelled"
    page = browser.get(f"/projects/{project_a.pk}/").content.decode()
    assert "Reopened &#x27;Step 1&#x27;." in page
