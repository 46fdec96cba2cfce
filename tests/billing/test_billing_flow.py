"""The whole flow over HTTP, on whichever database the suite runs on: accept a quote,
complete a milestone, review and edit the draft, send it, and the customer is emailed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, Api
from tranche.accounts.models import Customer
from tranche.billing.models import Invoice

pytestmark = pytest.mark.django_db


def test_quote_to_paid_link_in_the_customers_inbox(
    as_: Callable[[str], Api],
    customer_a: Customer,
    fake_stripe: FakeStripe,
    smtp: SmtpServer,
    after_commit: AfterCommit,
) -> None:
    staff, admin, alice = as_("staff"), as_("admin"), as_("alice")
    quote = staff.post(
        "/api/quotes",
        {
            "customer_id": customer_a.pk,
            "title": "Roof repair",
            "currency": "USD",
            "lines": [{"description": "Roofing", "quantity": "1", "unit_price": "1000.01"}],
            "schedule": [
                {"title": "Scaffold up", "is_billable": True, "billing_percentage": "33.33"},
                {"title": "Roof on", "is_billable": True, "billing_percentage": "33.33"},
                {"title": "Handover", "is_billable": True, "billing_percentage": "33.34"},
            ],
        },
    ).body
    project = staff.post(f"/api/quotes/{quote['id']}/accept").body["project"]
    first = project["milestones"][0]

    completed = staff.patch(f"/api/projects/{project['id']}/milestones/{first['id']}/complete").body
    draft = completed["draft_invoice"]
    assert (draft["status"], draft["amount"], draft["number"]) == ("draft", "333.30", None)

    financials = staff.get(f"/api/projects/{project['id']}/invoices").body
    assert [i["id"] for i in financials["items"]] == [draft["id"]]
    assert financials["summary"]["draft_amount"] == "333.30"
    assert [i["id"] for i in staff.get("/api/invoices?status=draft").body["items"]] == [draft["id"]]
    assert alice.get(f"/api/projects/{project['id']}/invoices").body["items"] == []
    assert smtp.messages == []

    edited = admin.patch(
        f"/api/projects/{project['id']}/invoices/{draft['id']}",
        {"description": "Scaffolding and strip-out"},
    ).body
    assert edited["description"] == "Scaffolding and strip-out"

    with after_commit(execute=True):
        sent = admin.post(f"/api/projects/{project['id']}/invoices/{draft['id']}/send")
    assert sent.status == 200
    invoice = sent.body["invoice"]
    assert invoice["status"] == "pending"
    assert invoice["number"].endswith("-00001")
    assert invoice["stripe_payment_intent_id"] in fake_stripe.intents
    assert fake_stripe.create_requests[0]["amount"] == "33330"

    [message] = smtp.messages
    assert message["To"] == "accounts@acme.example"
    assert invoice["payment_link"] in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert [
        i["number"] for i in alice.get(f"/api/projects/{project['id']}/invoices").body["items"]
    ] == [invoice["number"]]
    assert Invoice.objects.get().customer_email == "accounts@acme.example"
