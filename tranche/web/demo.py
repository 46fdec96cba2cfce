"""Demo data for `tranche demo` and `make run`: made through the same services as real
data, and safe to load again (nothing is created twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from tranche.accounts.business import business_row
from tranche.accounts.models import (
    Customer,
    PriceModeChoice,
    Role,
    TaxRate,
    TaxTreatment,
    User,
)
from tranche.accounts.services import customer_create, user_create
from tranche.billing.gateways import sandbox_allowed
from tranche.billing.models import Invoice, InvoiceStatus, PaymentMethod
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.core.money import ZERO
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Milestone, Project
from tranche.projects.selectors import current_lines
from tranche.projects.services_change_orders import change_order_create
from tranche.sales.models import Quote
from tranche.sales.services import LineInput, ScheduleInput, quote_create


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


ADMIN = DemoLogin("admin@example.com", "demo-admin-pass", Role.ADMIN)
STAFF = DemoLogin("staff@example.com", "demo-staff-pass", Role.STAFF)
CUSTOMER = DemoLogin("client@acme.example", "demo-client-pass", Role.CUSTOMER)
LOGINS = (ADMIN, STAFF, CUSTOMER)


def _customer(actor: User, name: str, **fields: str) -> Customer:
    existing = Customer.objects.filter(name=name).first()
    return existing or customer_create(actor=actor, name=name, **fields)  # type: ignore[arg-type]


def _user(login: DemoLogin, customer: Customer | None = None) -> User:
    existing = User.objects.filter(email=login.email).first()
    return existing or user_create(
        email=login.email,
        password=login.password,
        role=login.role,
        customer_id=customer.pk if customer else None,
    )


def _business() -> None:
    """The demo business's details, as an admin would set them at /settings/ (only when
    nobody has set them yet)."""
    row = business_row()
    if row.name:
        return
    row.name = "Harbour Build Co"
    row.address = "12 Quay Street\nPortsmouth PO1 2AB"
    row.tax_id = "GB 123 4567 89"
    row.reply_to = "accounts@harbourbuild.example"
    row.bank_details = "Harbour Bank · Sort code 20-20-15 · Account 55555555"
    row.country = "GB"
    row.price_mode = PriceModeChoice.EXCLUSIVE
    row.save()


def _rates() -> tuple[int, int]:
    """The demo's tax rates, as an admin would add them at /settings/: standard VAT and
    zero-rated (ids of both)."""
    vat, _ = TaxRate.objects.get_or_create(name="VAT 20 %", defaults={"percentage": Decimal("20")})
    zero, _ = TaxRate.objects.get_or_create(
        name="Zero-rated 0 %", defaults={"percentage": Decimal("0")}
    )
    return vat.pk, zero.pk


def _quote(
    actor: User,
    customer: Customer,
    title: str,
    currency: str,
    lines: list[LineInput],
    schedule: list[ScheduleInput],
    *,
    now: datetime,
) -> Quote | None:
    """A new quote, or None when the demo made it before (nothing is created twice)."""
    if Quote.objects.filter(customer=customer, title=title).exists():
        return None
    return quote_create(
        actor=actor,
        customer_id=customer.pk,
        title=title,
        currency=currency,
        lines=lines,
        schedule=schedule,
        now=now,
    )


def _billable(project: Project) -> list[Milestone]:
    return list(project.milestones.filter(is_billable=True).order_by("position"))


def _bill(actor: User, project: Project, milestone: Milestone, *, now: datetime) -> Invoice | None:
    """Complete `milestone` at `now` and, when the sandbox may take payments, send its draft
    then too: the demo's history is made through the same services as real history."""
    completion = milestone_complete(
        actor=actor, project_id=project.pk, milestone_id=milestone.pk, now=now
    )
    if completion.invoice is None or not sandbox_allowed():
        return completion.invoice
    return invoice_send(actor=actor, invoice_id=completion.invoice.pk, now=now)


def _pay(actor: User, invoice: Invoice | None, amount: Decimal, *, now: datetime) -> None:
    if invoice is None or invoice.status == InvoiceStatus.DRAFT:
        return
    payment_record_manual(
        actor=actor,
        invoice_id=invoice.pk,
        amount=amount,
        method=PaymentMethod.BANK_TRANSFER,
        received_on=now.date(),
        reference=f"Transfer {invoice.number}",
        now=now,
    )


def _amend(actor: User, project: Project, vat: int, *, now: datetime) -> None:
    """A change order approved on the customer's behalf: acoustic panels added to the
    contract, the milestones not yet invoiced re-allocated to bill them."""
    lines = [
        LineInput(line.description, line.quantity, line.unit_price, None, line.rate)
        for line in current_lines(project)
    ]
    lines.append(LineInput("Acoustic panels, meeting rooms", Decimal("6"), Decimal("450.00"), vat))
    change_order = change_order_create(
        actor=actor,
        project_id=project.pk,
        title="Acoustic panels in the meeting rooms",
        summary="Six acoustic panels, agreed on site with Hank.",
        lines=lines,
        now=now,
    )
    change_order_approve(actor=actor, change_order_id=change_order.pk, now=now)


def load_demo(now: datetime | None = None) -> tuple[DemoLogin, ...]:
    """Three customers, four quotes: a kitchen half paid with its next draft waiting for
    review, an office fit-out overdue, a brand refresh in euros part paid, and a garden
    studio quoted and sent, waiting for Acme to accept it online. Dates run back over the
    past months.

    Not one transaction: sending claims its draft in a transaction of its own before it
    calls the payment provider. Each quote is made once, so a second run adds nothing."""
    now = now or timezone.now()
    _business()
    vat, zero = _rates()
    admin = _user(ADMIN)
    _user(STAFF)
    acme = _customer(
        admin,
        "Acme Builders",
        billing_email="accounts@acme.example",
        contact_name="Ada Acme",
        address="1 Main Street\nSpringfield",
        tax_id="GB 987 6543 21",
        country="GB",
    )
    globex = _customer(
        admin, "Globex Studio", billing_email="ap@globex.example", contact_name="Hank Scorpio"
    )
    initech = _customer(
        admin,
        "Initech Offices",
        billing_email="finance@initech.example",
        contact_name="Bill Lumbergh",
        address="Rue de la Loi 42\n1040 Brussels",
        tax_id="BE 0123 456 789",
        country="BE",
        tax_treatment=TaxTreatment.REVERSE_CHARGE,
    )
    _user(CUSTOMER, acme)

    fit_out = _quote(
        admin,
        globex,
        "Office fit-out",
        "USD",
        [
            LineInput("Partition walls", Decimal("1"), Decimal("18500.00"), vat),
            LineInput("Lighting and data cabling", Decimal("1"), Decimal("9750.00"), vat),
        ],
        [
            ScheduleInput("Walls up", True, Decimal("40")),
            ScheduleInput("Cabling done", True, Decimal("35")),
            ScheduleInput("Sign-off", True, Decimal("25")),
        ],
        now=now - timedelta(days=150),
    )
    if fit_out is not None:
        project = quote_accept(actor=admin, quote_id=fit_out.pk, now=now - timedelta(days=145))
        walls, cabling, _signoff = _billable(project)
        first = _bill(admin, project, walls, now=now - timedelta(days=130))
        _pay(admin, first, first.amount if first else ZERO, now=now - timedelta(days=110))
        _amend(admin, project, vat, now=now - timedelta(days=100))
        overdue = _bill(admin, project, cabling, now=now - timedelta(days=75))
        if overdue is not None and overdue.number:
            credit_note_issue(
                actor=admin,
                invoice_id=overdue.pk,
                amount=Decimal("500.00"),
                reason="Goodwill: the cabling finished a week late",
                now=now - timedelta(days=30),
            )

    kitchen = _quote(
        admin,
        acme,
        "Kitchen renovation",
        "USD",
        [
            LineInput("Design and permits", Decimal("1"), Decimal("2400.00"), vat),
            LineInput("Cabinets and installation", Decimal("1"), Decimal("7600.00"), vat),
            LineInput("Electrical work (hours)", Decimal("24"), Decimal("83.34"), vat),
        ],
        [
            ScheduleInput("Deposit", True, Decimal("30"), bill_on_acceptance=True),
            ScheduleInput("Site survey", False, None),
            ScheduleInput("Cabinets installed", True, Decimal("30")),
            ScheduleInput("Handover", True, Decimal("40")),
        ],
        now=now - timedelta(days=70),
    )
    if kitchen is not None:
        project = quote_accept(actor=admin, quote_id=kitchen.pk, now=now - timedelta(days=65))
        deposit, cabinets, _handover = _billable(project)
        paid = _bill(admin, project, deposit, now=now - timedelta(days=60))
        _pay(admin, paid, paid.amount if paid else ZERO, now=now - timedelta(days=52))
        survey = project.milestones.get(is_billable=False)
        milestone_complete(
            actor=admin, project_id=project.pk, milestone_id=survey.pk, now=now - timedelta(days=40)
        )
        milestone_complete(
            actor=admin,
            project_id=project.pk,
            milestone_id=cabinets.pk,
            now=now - timedelta(days=2),
        )

    refresh = _quote(
        admin,
        initech,
        "Brand refresh",
        "EUR",
        [
            LineInput("Brand strategy workshop", Decimal("2"), Decimal("1800.00"), vat),
            LineInput("Visual identity", Decimal("1"), Decimal("6400.00"), vat),
        ],
        [
            ScheduleInput("Strategy agreed", True, Decimal("50")),
            ScheduleInput("Identity delivered", True, Decimal("50")),
        ],
        now=now - timedelta(days=40),
    )
    if refresh is not None:
        project = quote_accept(actor=admin, quote_id=refresh.pk, now=now - timedelta(days=38))
        strategy, _identity = _billable(project)
        part_paid = _bill(admin, project, strategy, now=now - timedelta(days=20))
        _pay(admin, part_paid, Decimal("2000.00"), now=now - timedelta(days=6))

    studio = _quote(
        admin,
        acme,
        "Garden studio",
        "USD",
        [
            LineInput("Timber frame studio, 3 x 4 m", Decimal("1"), Decimal("14200.00"), vat),
            LineInput("Foundations and groundwork", Decimal("1"), Decimal("3150.00"), zero),
        ],
        [
            ScheduleInput("Deposit", True, Decimal("30"), bill_on_acceptance=True),
            ScheduleInput("Frame and roof", True, Decimal("30")),
            ScheduleInput("Handover", True, Decimal("40")),
        ],
        now=now - timedelta(days=1),
    )
    if studio is not None:
        quote_send(actor=admin, quote_id=studio.pk, now=now - timedelta(days=1))
    # Flag what fell overdue while the history above was written.
    invoices_tick(now=now)
    return LOGINS
