"""Sent invoices never change; credit notes correct them (issue 9).

The database guard refuses any write to a sent invoice's figures and tax lines; a credit
note (partial, full, or the one a cancel issues) lowers what is due, per tax rate, with
its own gap-free number, its PDF and its email."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.concurrency import at_once
from tests.factories import CustomerFactory, make_project
from tests.helpers import REFUSED_ADMIN_ONLY, AfterCommit, Api, unchanged
from tranche.accounts.business import business_row
from tranche.accounts.models import Customer, TaxRate, User
from tranche.accounts.services import token_create
from tranche.billing.models import (
    CreditNote,
    CreditNoteKind,
    EventKind,
    Invoice,
    InvoiceStatus,
    InvoiceTaxLine,
    Payment,
)
from tranche.billing.selectors import customer_balances, invoice_page
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import credit_note_issue, refund_record_manual
from tranche.billing.services.drafts import invoice_update_draft, unbilled_amount
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.billing.taxes import invoice_bases, tax_for, write_tax_lines
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import ZERO
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def sent(project: Project, admin: User, position: int = 1) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk)


def two_rate_project(admin: User, customer: Customer, currency: str = "USD") -> Project:
    """1000 at VAT 20 % and 333 at 5.5 %, billed 30/30/40, tax-exclusive."""
    vat = TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))
    reduced = TaxRate.objects.create(name="Reduced 5.5 %", percentage=Decimal("5.5"))
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Two rates",
        currency=currency,
        lines=[
            LineInput("Build", Decimal(1), Decimal(1000), tax_rate_id=vat.pk),
            LineInput("Books", Decimal(1), Decimal(333), tax_rate_id=reduced.pk),
        ],
        schedule=[
            ScheduleInput("Step 1", True, Decimal(30)),
            ScheduleInput("Step 2", True, Decimal(30)),
            ScheduleInput("Step 3", True, Decimal(40)),
        ],
    )
    return quote_accept(actor=admin, quote_id=quote.pk)


def lines_of(invoice: Invoice) -> list[tuple[str, str, str, str]]:
    return [
        (line.name, str(line.net_amount), str(line.tax_amount), str(line.gross_amount))
        for line in InvoiceTaxLine.objects.filter(invoice=invoice).order_by("position")
    ]


def note_lines(note: CreditNote) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [
        (line.name, line.net_amount, line.tax_amount, line.gross_amount)
        for line in note.tax_lines.order_by("position")
    ]


# --- the database guard ------------------------------------------------------------------

IMMUTABLE_CHANGES = [
    ("amount", Decimal("1.00")),
    ("contract_amount", Decimal("1.00")),
    ("net_amount", Decimal("1.00")),
    ("tax_amount", Decimal("1.00")),
    ("currency", "EUR"),
    ("number", "INV-FORGED"),
    ("issue_date", date(2020, 1, 1)),
    ("due_date", date(2099, 1, 1)),
    ("description", "Something else"),
    ("customer_name", "Someone else"),
    ("buyer_tax_id", "XX999"),
    ("seller_tax_id", "XX999"),
    ("price_mode", "inclusive"),
    ("tax_treatment", "exempt"),
    ("tax_note", "A note"),
]


@pytest.mark.parametrize(("field", "value"), IMMUTABLE_CHANGES)
def test_an_orm_update_of_a_sent_invoice_is_refused_by_the_database(
    project_a: Project, admin: User, field: str, value: object
) -> None:
    invoice = sent(project_a, admin)
    with unchanged(), pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(**{field: value})


def test_moving_a_sent_invoice_to_another_customer_or_project_is_refused(
    project_a: Project, project_b: Project, admin: User, customer_b: Customer
) -> None:
    invoice = sent(project_a, admin)
    for change in ({"customer": customer_b}, {"project": project_b}):
        with unchanged(), pytest.raises(DatabaseError), transaction.atomic():
            Invoice.objects.filter(pk=invoice.pk).update(**change)


def test_raw_sql_cannot_change_a_sent_invoice_nor_its_tax_lines(
    project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    line = invoice.tax_lines.get()
    statements = [
        ("UPDATE billing_invoice SET amount = 1 WHERE id = %s", [invoice.pk]),
        ("UPDATE billing_invoicetaxline SET gross_amount = 1 WHERE id = %s", [line.pk]),
        ("DELETE FROM billing_invoicetaxline WHERE invoice_id = %s", [invoice.pk]),
        (
            "INSERT INTO billing_invoicetaxline (invoice_id, position, name, rate_percentage, "
            "percentage, net_amount, tax_amount, gross_amount) "
            "VALUES (%s, 9, 'x', 0, 0, 1, 0, 1)",
            [invoice.pk],
        ),
    ]
    for sql, params in statements:
        with (
            unchanged(),
            pytest.raises(DatabaseError, match="immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)


def test_a_draft_stays_editable_and_a_sent_invoice_keeps_its_payment_state_moving(
    project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    Invoice.objects.filter(pk=draft.pk).update(description="Edited by hand")
    invoice_update_draft(actor=admin, invoice_id=draft.pk, amount=Decimal("250.00"))
    assert lines_of(Invoice.objects.get(pk=draft.pk)) == [("", "250.000", "0.000", "250.000")]

    invoice = invoice_send(actor=admin, invoice_id=draft.pk)
    # What moves with money and time is free to move.
    Invoice.objects.filter(pk=invoice.pk).update(
        status=InvoiceStatus.OVERDUE,
        amount_paid=Decimal(10),
        customer_email="new@acme.example",
        intent_out_of_step=True,
        updated_at=timezone.now(),
    )
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.OVERDUE


def test_the_services_refuse_to_rewrite_a_sent_invoices_tax_lines(
    project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    tax = tax_for(
        invoice_bases(invoice), currency="USD", mode="exclusive", customer=invoice.customer
    )
    with unchanged(), pytest.raises(Conflict) as refused, transaction.atomic():
        write_tax_lines(invoice, tax)
    assert refused.value.code == "invoice_immutable"
    with unchanged(), pytest.raises(Conflict) as edit:
        invoice_update_draft(actor=admin, invoice_id=invoice.pk, amount=Decimal(1))
    assert edit.value.code == "invoice_not_draft"


def test_the_database_has_every_trigger_of_migrations_0011_and_0012() -> None:
    """On SQLite a migration that alters billing_invoice rebuilds the table and drops its
    triggers: the sent-invoice guard (0011) and the financials summary (0012) would go
    silently. Whatever migration comes after them must create them again."""
    if connection.vendor == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        present = {row[0] for row in cursor.fetchall()}
    guard = {
        "sqlite": [
            "billing_invoice_sent_immutable",
            "billing_invoice_tax_line_insert",
            "billing_invoice_tax_line_update",
            "billing_invoice_tax_line_delete",
        ],
        "postgresql": ["billing_invoice_sent_immutable", "billing_invoice_tax_line_guard"],
    }[connection.vendor]
    totals = [
        "billing_invoice_totals_insert",
        "billing_invoice_totals_update",
        "billing_invoice_totals_delete",
    ]
    assert set(guard + totals) <= present


# --- partial and full credit notes --------------------------------------------------------


def test_a_partial_credit_note_lowers_what_is_due_and_is_emailed_with_its_pdf(
    project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    invoice = sent(project_a, admin)
    before = lines_of(invoice)
    note = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal("50.00"), reason="Goodwill"
    )
    assert (note.number, note.kind, note.amount, note.currency) == (
        f"CN-{TODAY.year}-00001",
        CreditNoteKind.PARTIAL,
        Decimal("50.00"),
        "USD",
    )
    assert note_lines(note) == [("", Decimal(50), Decimal(0), Decimal(50))]
    invoice.refresh_from_db()
    assert (invoice.amount, invoice.amount_credited, invoice.amount_due) == (
        Decimal("300.00"),
        Decimal("50.00"),
        Decimal("250.00"),
    )
    assert invoice.status == InvoiceStatus.PENDING
    assert lines_of(invoice) == before  # the invoice itself never changed
    event = invoice.events.get(kind=EventKind.CREDITED)
    assert event.details == {
        "credit_note_id": note.pk,
        "number": note.number,
        "amount": "50.00",
        "credit_kind": "partial",
        "reason": "Goodwill",
    }
    email = OutboxEmail.objects.get(kind="credit_note_issued")
    assert email.to == "accounts@acme.example"
    assert email.attachments == [{"kind": "credit_note_pdf", "credit_note_id": note.pk}]
    assert note.number in email.subject
    assert "$250.00" in email.body_text
    assert note.emailed_at is not None


def test_a_credit_of_the_whole_amount_shows_the_invoice_as_credited_never_paid(
    project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(100), reason="Scope")
    last = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal(200), reason="Not delivered"
    )
    invoice.refresh_from_db()
    assert last.kind == CreditNoteKind.FULL
    assert (invoice.status, invoice.amount_due, invoice.paid_at) == (
        InvoiceStatus.CREDITED,
        Decimal(0),
        None,
    )
    # Nothing is left to credit or to pay.
    with unchanged(), pytest.raises(Invalid) as more:
        credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal("0.01"), reason="x")
    assert more.value.code == "amount_exceeds_creditable"
    with unchanged(), pytest.raises(Conflict):
        payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal(1),
            method="bank_transfer",
            received_on=TODAY,
        )


def test_two_rates_are_credited_in_proportion_and_a_full_credit_mirrors_the_rest(
    admin: User, customer_a: Customer
) -> None:
    project = two_rate_project(admin, customer_a)
    invoice = sent(project, admin)
    # 30 %: 300.00 at 20 % (tax 60.00) and 99.90 at 5.5 % (tax 5.49).
    assert lines_of(invoice) == [
        ("VAT 20 %", "300.000", "60.000", "360.000"),
        ("Reduced 5.5 %", "99.900", "5.490", "105.390"),
    ]
    partial = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal("100.00"), reason="Discount"
    )
    # 100.00 over 360.00 : 105.39 -> 77.35 and 22.65; tax = gross * r / (100 + r).
    assert note_lines(partial) == [
        ("VAT 20 %", Decimal("64.46"), Decimal("12.89"), Decimal("77.35")),
        ("Reduced 5.5 %", Decimal("21.47"), Decimal("1.18"), Decimal("22.65")),
    ]
    assert (partial.net_amount, partial.tax_amount) == (Decimal("85.93"), Decimal("14.07"))
    rest = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal("365.39"), reason="Cancelled job"
    )
    assert rest.kind == CreditNoteKind.FULL
    assert note_lines(rest) == [
        ("VAT 20 %", Decimal("235.54"), Decimal("47.11"), Decimal("282.65")),
        ("Reduced 5.5 %", Decimal("78.43"), Decimal("4.31"), Decimal("82.74")),
    ]


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (Decimal(0), "amount_not_positive"),
        (Decimal("-5"), "amount_not_positive"),
        (Decimal("0.001"), "amount_precision"),
        (Decimal("300.01"), "amount_exceeds_creditable"),
    ],
)
def test_a_credit_that_cannot_be_issued_changes_nothing(
    project_a: Project, admin: User, amount: Decimal, code: str
) -> None:
    invoice = sent(project_a, admin)
    with unchanged(), pytest.raises(Invalid) as refused:
        credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=amount, reason="Oops")
    assert refused.value.code == code


def test_drafts_and_cancelled_invoices_take_no_credit_note(project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    with unchanged(), pytest.raises(Conflict) as refused:
        credit_note_issue(actor=admin, invoice_id=draft.pk, amount=Decimal(1), reason="x")
    assert refused.value.code == "invoice_not_creditable"
    cancelled = sent(project_a, admin, 2)
    invoice_cancel(actor=admin, invoice_id=cancelled.pk, reason="Duplicate")
    with unchanged(), pytest.raises(Conflict):
        credit_note_issue(actor=admin, invoice_id=cancelled.pk, amount=Decimal(1), reason="x")
    with unchanged(), pytest.raises(Invalid) as no_reason:
        credit_note_issue(actor=admin, invoice_id=cancelled.pk, amount=Decimal(1), reason="  ")
    assert no_reason.value.code == "reason_required"


def test_crediting_a_paid_invoice_leaves_money_owed_back_and_a_refund_can_credit(
    project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(300),
        method="bank_transfer",
        received_on=TODAY,
    )
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(40), reason="Late")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.credit_owed) == (
        InvoiceStatus.PAID,
        Decimal(0),
        Decimal(40),
    )
    assert invoice.events.filter(kind=EventKind.CREDIT_OWED).count() == 1

    # Giving the 40 back pays what was owed; no second credit note.
    refund = refund_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(40),
        method="bank_transfer",
        paid_on=TODAY,
        reason="Refund of the credit",
        credit_invoice=False,
    )
    invoice.refresh_from_db()
    assert (refund.amount, refund.credit_note, invoice.credit_owed) == (Decimal(-40), None, ZERO)
    assert invoice.status == InvoiceStatus.PAID

    # A refund that says the customer owes less issues its credit note and points to it.
    credited = refund_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(60),
        method="bank_transfer",
        paid_on=TODAY,
        reason="Returned the tiles",
        credit_invoice=True,
    )
    invoice.refresh_from_db()
    assert credited.credit_note is not None
    assert credited.credit_note.amount == Decimal(60)
    assert (invoice.amount_credited, invoice.amount_paid, invoice.amount_due) == (
        Decimal(100),
        Decimal(200),
        Decimal(0),
    )
    assert invoice.status == InvoiceStatus.PAID
    with unchanged(), pytest.raises(Invalid) as too_much:
        refund_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("200.01"),
            method="bank_transfer",
            paid_on=TODAY,
            reason="x",
            credit_invoice=False,
        )
    assert too_much.value.code == "refund_exceeds_payment"


def test_cancelling_a_sent_invoice_issues_a_full_credit_note_in_the_same_step(
    project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(30), reason="Discount")
    invoice_cancel(actor=admin, invoice_id=invoice.pk, reason="Wrong customer")
    invoice.refresh_from_db()
    _first, full = invoice.credit_notes.order_by("id")
    # The cancel's reason is the business's note; the customer's credit note says what it is.
    assert (full.kind, full.amount, full.reason) == (
        CreditNoteKind.FULL,
        Decimal(270),
        f"Cancellation of invoice {invoice.number}",
    )
    assert (invoice.status, invoice.amount_credited, invoice.amount_due) == (
        InvoiceStatus.CANCELLED,
        Decimal(300),
        Decimal(0),
    )
    # Its contract share may be billed again; the cancel email carries the credit note.
    assert unbilled_amount(project_a) == Decimal(1000)
    told = OutboxEmail.objects.get(kind="invoice_cancelled")
    assert {"kind": "credit_note_pdf", "credit_note_id": full.pk} in told.attachments
    assert full.number in told.body_text
    assert not OutboxEmail.objects.filter(key=f"credit_note:{full.pk}:issued").exists()


def test_cancelling_a_draft_issues_no_credit_note(project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_cancel(actor=admin, invoice_id=draft.pk, reason="Not yet")
    assert CreditNote.objects.count() == 0


def test_numbers_are_their_own_gap_free_sequence_in_the_chosen_format(
    project_a: Project, admin: User
) -> None:
    row = business_row()
    row.credit_note_number_format = "AV/{year}/{seq:03d}"
    row.save()
    first, second = sent(project_a, admin, 1), sent(project_a, admin, 2)
    numbers = [
        credit_note_issue(actor=admin, invoice_id=i.pk, amount=Decimal(1), reason="r").number
        for i in (first, second, first)
    ]
    year = TODAY.year
    assert numbers == [f"AV/{year}/001", f"AV/{year}/002", f"AV/{year}/003"]
    assert first.number == f"INV-{year}-00001"  # the invoices keep their own sequence


def test_totals_and_balances_take_credit_notes_off_what_is_owed(
    project_a: Project, admin: User, staff: User
) -> None:
    invoice = sent(project_a, admin)
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(100), reason="r")
    [totals] = invoice_page(user=staff).totals
    assert totals.outstanding_amount == Decimal(200)
    assert customer_balances([invoice.customer_id])[invoice.customer_id][0].amount == 200


# --- the API ------------------------------------------------------------------------------


def credit_path(invoice: Invoice) -> str:
    return f"/api/invoices/{invoice.pk}/credit-notes"


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_issue_a_credit_note(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    invoice = sent(project_a, admin)
    api = as_(persona)
    with unchanged():
        response = api.post(credit_path(invoice), {"amount": "10.00", "reason": "Goodwill"})
    assert (response.status, response.body["code"]) == (status, code)


def test_an_admin_issues_a_credit_note_and_each_persona_reads_what_is_theirs(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    response = as_("admin").post(credit_path(invoice), {"amount": "10.00", "reason": "Goodwill"})
    assert response.status == 201
    body = response.body
    assert body == {
        **body,
        "kind": "partial",
        "invoice_id": invoice.pk,
        "invoice_number": invoice.number,
        "amount": "10.00",
        "net_amount": "10.00",
        "tax_amount": "0.00",
        "reason": "Goodwill",
        "issued_by_id": admin.pk,
    }
    path = f"/api/credit-notes/{body['id']}"
    for persona in ("admin", "staff", "alice"):
        listed = as_(persona).get("/api/credit-notes")
        assert [n["number"] for n in listed.body["items"]] == [body["number"]]
        assert as_(persona).get(path).status == 200
    customer_view = as_("alice").get(path).body
    assert "issued_by_id" not in customer_view
    assert "emailed_at" not in customer_view
    assert as_("bob").get("/api/credit-notes").body["items"] == []
    assert as_("bob").get(path).body["code"] == "credit_note_not_found"
    assert as_("anonymous").get(path).status == 401
    detail = as_("alice").get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}").body
    assert (detail["amount_credited"], detail["amount_due"]) == ("10.00", "290.00")
    assert detail["events"][-1]["kind"] == "credited"
    assert detail["events"][-1]["number"] == body["number"]


def test_the_api_refuses_bad_credits_and_other_peoples_invoices(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    draft = draft_for(project_a, 2, admin)
    cases = [
        (
            credit_path(invoice),
            {"amount": "300.01", "reason": "x"},
            422,
            "amount_exceeds_creditable",
        ),
        (credit_path(invoice), {"amount": "10", "reason": ""}, 422, "validation_error"),
        (credit_path(draft), {"amount": "10", "reason": "x"}, 409, "invoice_not_creditable"),
        (
            "/api/invoices/999999/credit-notes",
            {"amount": "1", "reason": "x"},
            404,
            "invoice_not_found",
        ),
    ]
    api = as_("admin")
    for path, body, status, code in cases:
        with unchanged():
            response = api.post(path, body)
        assert (response.status, response.body["code"]) == (status, code)


def test_the_credit_note_pdf_is_the_customers_and_names_the_invoice(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    note = credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(25), reason="r")
    pdf = as_("alice").client.get(f"/api/credit-notes/{note.pk}/pdf", headers=as_("alice").headers)
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert as_("bob").get(f"/api/credit-notes/{note.pk}/pdf").status == 404


def test_refunds_over_the_api_are_for_admins_and_can_credit(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent(project_a, admin)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(300),
        method="bank_transfer",
        received_on=TODAY,
    )
    body = {
        "amount": "50.00",
        "method": "bank_transfer",
        "paid_on": TODAY.isoformat(),
        "reason": "One door not fitted",
        "credit_invoice": True,
    }
    for persona in ("staff", "alice", "bob"):
        api = as_(persona)
        with unchanged():
            assert api.post(f"/api/invoices/{invoice.pk}/refunds", body).status == 403
    response = as_("admin").post(f"/api/invoices/{invoice.pk}/refunds", body)
    assert response.status == 201
    assert response.body["payment"]["amount"] == "-50.00"
    assert response.body["credit_note"]["amount"] == "50.00"
    assert response.body["invoice"]["amount_due"] == "0.00"
    assert Payment.objects.get(amount=-50).credit_note_id == response.body["credit_note"]["id"]
    assert response.body["payment"]["credit_note_id"] == response.body["credit_note"]["id"]
    # The invoice's own payment list names the credit note each refund came with.
    detail = as_("admin").get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}").body
    linked = {p["amount"]: p["credit_note_id"] for p in detail["payments"]}
    assert linked == {"300.00": None, "-50.00": response.body["credit_note"]["id"]}


def test_a_customer_of_another_business_never_sees_a_credit_note(
    as_: Callable[[str], Api], admin: User
) -> None:
    other = CustomerFactory.create(name="Initech", billing_email="ap@initech.example")
    project = quote_accept(
        actor=admin,
        quote_id=quote_create(
            actor=admin,
            customer_id=other.pk,
            title="Other",
            currency="USD",
            lines=[LineInput("Work", Decimal(1), Decimal(100))],
            schedule=[ScheduleInput("All", True, Decimal(100))],
        ).pk,
    )
    invoice = sent(project, admin)
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(5), reason="r")
    assert as_("alice").get("/api/credit-notes").body["items"] == []
    assert mail.outbox == []  # queued, not delivered inside the test


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_credit_notes_cannot_over_credit_and_keep_numbers_gap_free(
    admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    invoice = sent(project, admin)  # 300.00
    token = token_create(user=admin)

    results = at_once(
        6, lambda: Api(token).post(credit_path(invoice), {"amount": "120.00", "reason": "Race"})
    )

    statuses = sorted(r.status for r in results)  # type: ignore[union-attr]
    assert statuses == [201, 201] + [422] * 4
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.amount_due) == (Decimal(240), Decimal(60))
    numbers = sorted(CreditNote.objects.values_list("number", flat=True))
    assert numbers == [f"CN-{TODAY.year}-00001", f"CN-{TODAY.year}-00002"]
