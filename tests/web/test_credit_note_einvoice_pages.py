"""The credit note's e-invoice in the portal: a "Factur-X" download beside each credit
note on the invoice page and in the credit notes list, for staff and the customer; the
file is the credit note's (TypeCode 381); anyone else gets 404 and nothing changes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.billing.helpers import draft_for
from tests.billing.test_einvoice import checked_xml, text
from tests.helpers import unchanged
from tests.web.test_invoice_pages import page_of
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.billing.models import CreditNote
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def issued(project: Project, admin: User) -> CreditNote:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    return credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal("30.00"), reason="Goodwill"
    )


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_the_invoice_page_and_the_list_link_each_credit_notes_e_invoice(
    request: pytest.FixtureRequest, admin: User, project_a: Project, persona: str
) -> None:
    note = issued(project_a, admin)
    client = signed_in(request.getfixturevalue(persona))
    link = f'href="/credit-notes/{note.pk}/factur-x.pdf" download'
    label = f"Credit note {note.number} (Factur-X)"

    on_invoice = page_of(client, note.invoice)
    listed = client.get("/credit-notes/").content.decode()

    for html in (on_invoice, listed):
        assert link in html
        assert label in html
    with unchanged():
        response = client.get(f"/credit-notes/{note.pk}/factur-x.pdf")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (f'attachment; filename="{note.number}-factur-x.pdf"')
    root = checked_xml(response.content)
    assert text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert text(root, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == (
        note.invoice.number
    )


def test_another_customer_and_anonymous_get_no_e_invoice(
    admin: User, bob: User, project_a: Project
) -> None:
    from django.test import Client

    note = issued(project_a, admin)
    path = f"/credit-notes/{note.pk}/factur-x.pdf"
    bob_client, admin_client = signed_in(bob), signed_in(admin)

    with unchanged():
        other = bob_client.get(path)
        anonymous = Client().get(path)
        missing = admin_client.get("/credit-notes/999999/factur-x.pdf")

    assert other.status_code == 404
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login")
    assert missing.status_code == 404
    assert "factur-x.pdf" not in bob_client.get("/credit-notes/").content.decode()
