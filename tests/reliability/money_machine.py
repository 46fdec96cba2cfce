"""A hypothesis state machine over the whole money lifecycle of a few projects.

Rules act through the services the API and the pages call (and, for card events, the
webhook service the endpoint calls, or the endpoint itself while the clock is real):
complete and reopen milestones, edit, send and cancel drafts, cancel sent invoices (a
credit note), bank transfers (partial and full), card payments at the fake Stripe whose
`payment_intent.succeeded` arrives signed, late, twice, out of order or not at all
(reconciliation), refunds at Stripe (`charge.refunded`) and by hand, partial credit
notes, change orders (up, down below what was invoiced with credit notes, new rates),
early retainage releases, Stripe outages, and ticks of the periodic pass after clock
jumps of minutes up to decades.

After every step (`MoneyMachine.holds`):

- at most one live invoice per milestone;
- at most one live (unpaid) PaymentIntent per invoice, it is the invoice's own, and it
  charges exactly the amount due (unless the invoice is flagged out of step while
  Stripe is down); an invoice that asks for nothing has none;
- invoice and credit note numbers are unique and gap-free per sequence and year;
- `amount_paid` is the sum of the invoice's payments, and those are what happened: each
  card payment once, at what the card was charged, each refund what Stripe reported,
  each transfer what was recorded;
- nothing sent ever changes (a snapshot at sending, compared after every step);
- per tax rate the billable milestones' shares add up to the contract exactly, and a
  live invoice bills exactly its milestone's share net of credit notes, unless staff
  moved it on purpose (a draft edited, a credit note issued by hand) since the contract
  was last amended: so contract = invoiced - credited + not yet invoiced;
- retainage held is never negative; every sent invoice's status is what its facts make
  it; the periodic pass completes without a failure while Stripe is up;
- the financials totals, read from the summary the database keeps (InvoiceTotals), equal
  a full recount from the invoices, key by key and as the business and each customer's
  users are shown them.

A refusal (a domain error) is allowed only with the codes a rule expects, and changes
nothing in the database.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.billing import stripe_events as events
from tests.billing.helpers import recounted_rows, summary_rows
from tests.billing.taxed import set_up_business
from tests.fakes.stripe_server import UNPAID, FakeStripe
from tests.helpers import db_state
from tranche.accounts.models import Customer, Role, User
from tranche.accounts.models import TaxRate as TaxRateRow
from tranche.billing.contract_reads import live_invoices
from tranche.billing.models import (
    MANUAL_METHODS,
    OPEN_STATUSES,
    SENT_STATUSES,
    CreditNote,
    CreditNoteNumberSequence,
    Invoice,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceType,
    Payment,
    PaymentMethod,
    StripeEvent,
)
from tranche.billing.retainage import project_retainage
from tranche.billing.rules import status_for
from tranche.billing.selectors import InvoiceFilter, currency_totals, recount
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.crediting import credit_note_issue, refund_record_manual
from tranche.billing.services.drafts import (
    invoice_update_draft,
    milestone_complete,
    milestone_reopen,
    unbilled_amount,
)
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.reconcile import reconcile_payments
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.sending import invoice_send
from tranche.billing.taxes import billed_bases
from tranche.billing.webhooks import (
    GAVE_UP,
    WebhookRejected,
    stripe_events_retry,
    webhook_receive,
)
from tranche.core.errors import DomainError
from tranche.core.money import ZERO, Money, from_minor_units, quantum, to_minor_units
from tranche.core.tax import Bases, TaxRate
from tranche.projects.amendment import ScheduleChange
from tranche.projects.contract import milestone_bases, project_bases
from tranche.projects.models import Milestone, MilestoneStatus, Project
from tranche.projects.selectors import current_lines, milestones_of
from tranche.projects.services import project_set_retainage
from tranche.projects.services_change_orders import change_order_create
from tranche.sales.services import LineInput, ScheduleInput, quote_create

# The clock never passes this year: dates stay printable and numbers keep their format.
LAST_YEAR = 9000
SCHEDULES = (
    ("100",),
    ("30", "70"),
    ("30", "30", "40"),
    ("20", "30", "50"),
    ("33.33", "33.33", "33.34"),
)
SENT_FIELDS = (
    "number",
    "invoice_type",
    "project_id",
    "customer_id",
    "quote_id",
    "currency",
    "amount",
    "contract_amount",
    "net_amount",
    "tax_amount",
    "retainage_percentage",
    "retainage_amount",
    "price_mode",
    "tax_treatment",
    "tax_note",
    "seller_tax_id",
    "buyer_tax_id",
    "description",
    "issue_date",
    "due_date",
    "customer_name",
    "sent_at",
    "sent_by_id",
)
TAX_LINE_FIELDS = (
    "position",
    "name",
    "rate_percentage",
    "percentage",
    "net_amount",
    "tax_amount",
    "gross_amount",
)
NUMBER = re.compile(r"^(?:INV|CN)-(\d{4})-(\d{5,})$")


@dataclass
class World:
    """What the test's fixtures made once, outside the examples (rolled back after each)."""

    admin: User
    customers: list[Customer]
    rates: list[TaxRateRow]
    stripe: FakeStripe
    capture: Callable[..., AbstractContextManager[Any]]


@dataclass
class Figures:
    """Counted over every example of a run, for tests.figures.record."""

    runs: int = 0
    steps: int = 0
    invariant_checks: int = 0
    rules_fired: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    max_clock_jump_days: float = 0.0
    max_year: int = 0


@dataclass
class Charge:
    """A card payment as Stripe knows it: its intent, what it took, what was given back."""

    intent_id: str
    invoice_id: int
    received_minor: int
    refunded_minor: int = 0


def _drop_zero(bases: Bases) -> dict[Any, Money]:
    return {rate: amount for rate, amount in bases.items() if amount.amount != ZERO}


def _add(into: dict[Any, Money], bases: Bases, currency: str) -> None:
    for rate, amount in bases.items():
        into[rate] = into.get(rate, Money.zero(currency)) + amount


def _part(total_minor: int, permille: int) -> int:
    """A share of `total_minor` of at least one minor unit (0 when there is nothing)."""
    if total_minor <= 0:
        return 0
    return max(1, total_minor * permille // 1000)


class MoneyMachine(RuleBasedStateMachine):
    world: ClassVar[World]
    figures: ClassVar[Figures]

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown. Marked as the test
        # case's own block, so the services' durable blocks (the send claim, anything
        # before a provider call) may open inside it, as inside any database test.
        self._atomic = transaction.atomic()
        self._atomic._from_testcase = True  # type: ignore[attr-defined]
        self._atomic.__enter__()
        stripe = self.world.stripe
        with stripe.lock:
            stripe.intents.clear()
            stripe.replies.clear()
        stripe.fail_updates = False
        self.clock = timezone.now().replace(microsecond=0)
        self.jumped = False
        self.projects: list[Project] = []
        self.snapshots: dict[int, tuple[Any, ...]] = {}
        # Milestones whose live invoice staff moved away from the milestone's share on
        # purpose (a draft edited, a credit note by hand) since the contract was amended.
        self.moved: set[int] = set()
        self.charges: dict[str, Charge] = {}
        # What each stored charge.refunded event reported (its intent, the refund total),
        # read while its payload is there: data retention blanks it after a clock jump.
        self.refund_payloads: dict[int, tuple[str, int]] = {}
        # Signed events Stripe has yet to deliver (in any order), and those delivered.
        self.queue: list[str] = []
        self.delivered: list[str] = []
        self.manual_paid: Counter[int] = Counter()
        # Whether a step may have changed anything since the invariants last held: a step
        # that did nothing (nothing to pick) or was refused (proven to change nothing)
        # leaves the state they were checked on.
        self.dirty = True
        self.figures.runs += 1

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers --------------------------------------------------------------------

    @property
    def admin(self) -> User:
        return self.world.admin

    def fired(self, name: str, outcome: str = "done", *, changed: bool | None = None) -> None:
        self.dirty |= not outcome.startswith("refused") if changed is None else changed
        self.figures.steps += 1
        self.figures.rules_fired[name] += 1
        self.figures.outcomes[f"{name}:{outcome}"] += 1

    @contextmanager
    def step(self, name: str, *allowed: str) -> Iterator[None]:
        """Run a step with its after-commit work (intent syncs, email deliveries) done as
        a commit would do it. A domain error whose code is in `allowed` is a refusal,
        which must change nothing; any other error fails the run."""
        before = db_state() if allowed else None
        try:
            with self.world.capture(execute=True):
                yield
        except DomainError as exc:
            if exc.code not in allowed:
                raise
            code = exc.code
        else:
            self.fired(name)
            return
        assert db_state() == before, f"{name} refused ({code}) but changed the database"
        self.fired(name, f"refused {code}")

    def pick(self, items: list[Any], index: int) -> Any | None:
        return items[index % len(items)] if items else None

    def invoices(self, **filters: Any) -> list[Invoice]:
        return list(Invoice.objects.filter(project__in=self.projects, **filters).order_by("pk"))

    def today(self) -> date:
        return timezone.localdate(self.clock)

    def sign_and_deliver(self, payload: str, via_view: bool) -> str:
        signature = events.sign(payload)
        if via_view and not self.jumped:
            with self.world.capture(execute=True):
                response = Client().post(
                    "/api/webhooks/stripe",
                    payload,
                    content_type="application/json",
                    headers={"Stripe-Signature": signature},
                )
            body = response.json()
            if response.status_code == 400:
                return f"rejected {body['code']}"
            assert response.status_code == 200, (response.status_code, body)
            return str(body.get("outcome") or body)
        try:
            with self.world.capture(execute=True):
                return webhook_receive(
                    payload=payload.encode(), signature=signature, now=self.clock
                )
        except WebhookRejected as exc:
            return f"rejected {exc.code}"

    # --- the world ------------------------------------------------------------------

    @initialize(data=st.data())
    def set_up(self, data: st.DataObject) -> None:
        world = self.world
        set_up_business(price_mode=data.draw(st.sampled_from(["exclusive", "inclusive"])))
        for customer in world.customers:
            customer.tax_treatment = data.draw(
                st.sampled_from(["standard", "standard", "reverse_charge"])
            )
            customer.save(update_fields=["tax_treatment"])
        for n, customer in enumerate(world.customers):
            currency = data.draw(st.sampled_from(["USD", "JPY", "KWD"]))
            count = data.draw(st.integers(1, 2))
            lines = []
            for k in range(count):
                minor = data.draw(st.one_of(st.integers(1, 5_000_000), st.integers(1, 10)))
                rate = data.draw(st.sampled_from([*world.rates, None]))
                lines.append(
                    LineInput(
                        f"Line {k + 1}",
                        Decimal(1),
                        from_minor_units(minor, currency),
                        rate.pk if rate else None,
                    )
                )
            percentages = data.draw(st.sampled_from(SCHEDULES))
            deposit = data.draw(st.booleans())
            schedule = [
                ScheduleInput(f"Step {k}", True, Decimal(p), deposit and k == 1)
                for k, p in enumerate(percentages, 1)
            ]
            schedule.insert(1, ScheduleInput("Site visit", False, None))
            try:
                quote = quote_create(
                    actor=self.admin,
                    customer_id=customer.pk,
                    title=f"Project {n + 1}",
                    currency=currency,
                    lines=lines,
                    schedule=schedule,
                )
            except DomainError as exc:
                # A deposit of a tiny total would bill nothing: billed later instead.
                if exc.code != "deposit_amount_zero":
                    raise
                schedule[0] = ScheduleInput("Step 1", True, Decimal(percentages[0]))
                quote = quote_create(
                    actor=self.admin,
                    customer_id=customer.pk,
                    title=f"Project {n + 1}",
                    currency=currency,
                    lines=lines,
                    schedule=schedule,
                )
            with self.world.capture(execute=True):
                project = quote_accept(actor=self.admin, quote_id=quote.pk, now=self.clock)
            retainage = data.draw(st.sampled_from(["0", "0", "5", "10"]))
            project_set_retainage(
                actor=self.admin, project_id=project.pk, percentage=Decimal(retainage)
            )
            project.refresh_from_db()
            self.projects.append(project)
            # A head start: some milestones already completed, their invoices sent.
            for milestone in milestones_of(project)[: data.draw(st.integers(0, 3))]:
                if milestone.status == MilestoneStatus.PENDING:
                    try:
                        milestone_complete(
                            actor=self.admin,
                            project_id=project.pk,
                            milestone_id=milestone.pk,
                            now=self.clock,
                        )
                    except DomainError as exc:  # a share of a tiny contract: nothing
                        if exc.code != "milestone_amount_zero":
                            raise
            for draft in self.invoices(project=project, status=InvoiceStatus.DRAFT):
                with self.world.capture(execute=True):
                    invoice_send(actor=self.admin, invoice_id=draft.pk, now=self.clock)
                self.snapshots[draft.pk] = self.snapshot(draft.pk)

    # --- milestones -----------------------------------------------------------------

    def on_milestone(
        self, status: str, index: int, name: str, allowed: tuple[str, ...], service: Any
    ) -> Milestone | None:
        """Complete or reopen (`service`) the index-th milestone in `status`, as a step
        that may be refused with the `allowed` codes; the milestone if it was done."""
        found = [m for p in self.projects for m in milestones_of(p) if m.status == status]
        milestone: Milestone | None = self.pick(found, index)
        if milestone is None:
            return None
        with self.step(name, *allowed):
            service(
                actor=self.admin,
                project_id=milestone.project_id,
                milestone_id=milestone.pk,
                now=self.clock,
            )
            return milestone
        return None  # refused: nothing changed

    @rule(index=st.integers(0, 10**6))
    def complete_milestone(self, index: int) -> None:
        codes = ("contract_overbilled", "milestone_amount_zero")
        self.on_milestone(MilestoneStatus.PENDING, index, "complete", codes, milestone_complete)

    @rule(index=st.integers(0, 10**6))
    def reopen_milestone(self, index: int) -> None:
        codes = ("invoice_already_sent", "retainage_already_released")
        milestone = self.on_milestone(
            MilestoneStatus.COMPLETED, index, "reopen", codes, milestone_reopen
        )
        if milestone is not None:
            self.moved.discard(milestone.pk)

    # --- drafts ---------------------------------------------------------------------

    @rule(index=st.integers(0, 10**6), permille=st.integers(1, 1300))
    def edit_draft(self, index: int, permille: int) -> None:
        drafts = self.invoices(status=InvoiceStatus.DRAFT, invoice_type=InvoiceType.MILESTONE)
        draft = self.pick(drafts, index)
        if draft is None:
            return
        room = draft.contract_amount + unbilled_amount(draft.project, excluding=draft)
        minor = _part(to_minor_units(room, draft.currency), permille)
        amount = from_minor_units(minor, draft.currency)
        # Lowering its retainage below what a sent release already billed is refused
        # (docs/deposits-and-retainage.md), as cancelling it would be.
        refusals = ("amount_exceeds_unbilled", "amount_not_positive", "retainage_already_released")
        with self.step("edit_draft", *refusals):
            invoice_update_draft(
                actor=self.admin, invoice_id=draft.pk, amount=amount, now=self.clock
            )
            if draft.milestone_id:
                self.moved.add(draft.milestone_id)

    @rule(index=st.integers(0, 10**6))
    def send_draft(self, index: int) -> None:
        draft = self.pick(self.invoices(status=InvoiceStatus.DRAFT), index)
        if draft is None:
            return
        with self.step("send"):
            sent = invoice_send(actor=self.admin, invoice_id=draft.pk, now=self.clock)
        self.snapshots[sent.pk] = self.snapshot(sent.pk)

    @rule(index=st.integers(0, 10**6), sent=st.booleans())
    def cancel_invoice(self, index: int, sent: bool) -> None:
        if sent:
            candidates = self.invoices(status__in=SENT_STATUSES)
        else:
            candidates = self.invoices(status=InvoiceStatus.DRAFT)
        invoice = self.pick(candidates, index)
        if invoice is None:
            return
        notes_before = invoice.credit_notes.count()
        creditable = invoice.amount - invoice.amount_credited
        intent = self.world.stripe.intents.get(invoice.provider_reference or "", {})
        # Stripe cannot cancel an intent that took the money: while its webhook is on its
        # way, the invoice cannot be cancelled (the provider error says so).
        in_flight = ("payment_provider_error",) if intent.get("status") == "succeeded" else ()
        with self.step(
            "cancel_sent" if sent else "cancel_draft",
            "invoice_has_payments",
            "retainage_already_released",
            *in_flight,
        ):
            invoice_cancel(
                actor=self.admin, invoice_id=invoice.pk, reason="Machine cancel", now=self.clock
            )
            invoice.refresh_from_db()
            assert invoice.status == InvoiceStatus.CANCELLED
            if sent and creditable > 0:
                # The credit note takes back all that was still creditable.
                note = invoice.credit_notes.order_by("-pk").first()
                assert note is not None
                assert invoice.credit_notes.count() == notes_before + 1
                assert note.amount == creditable
                assert invoice.amount_credited == invoice.amount
            elif not sent:
                assert invoice.number is None
                assert not invoice.credit_notes.exists()

    # --- money in -------------------------------------------------------------------

    @rule(index=st.integers(0, 10**6), permille=st.integers(1, 1100), full=st.booleans())
    def bank_transfer(self, index: int, permille: int, full: bool) -> None:
        invoice = self.pick(self.invoices(status__in=OPEN_STATUSES), index)
        if invoice is None:
            return
        due = to_minor_units(invoice.amount_due, invoice.currency)
        minor = due if full else _part(due, permille)
        amount = from_minor_units(minor, invoice.currency)
        with self.step(
            "transfer_full" if full else "transfer_part",
            "amount_exceeds_due",
            "amount_not_positive",
        ):
            payment_record_manual(
                actor=self.admin,
                invoice_id=invoice.pk,
                amount=amount,
                method=PaymentMethod.BANK_TRANSFER,
                received_on=self.today(),
                reference=f"BACS-{secrets.token_hex(3)}",
                now=self.clock,
            )
            self.manual_paid[invoice.pk] += minor

    @rule(
        index=st.integers(0, 10**6),
        deliver=st.booleans(),
        via_view=st.booleans(),
        lands_on_done=st.booleans(),
    )
    def card_payment(self, index: int, deliver: bool, via_view: bool, lands_on_done: bool) -> None:
        """The customer opens the pay page (which brings the intent to the amount due
        before handing it out, or offers no way to pay) and pays by card: Stripe charges
        the intent and will tell us by a signed webhook, now or later. The customer may
        come back to the page's "done" address, which asks Stripe and settles too."""
        invoice = self.pick(
            self.invoices(status__in=OPEN_STATUSES, payment_gateway="stripe"), index
        )
        if invoice is None:
            return
        with self.world.capture(execute=True):
            page = Client().get(f"/pay/{invoice.pay_token}").content.decode()
        invoice.refresh_from_db()
        intent = self.world.stripe.intents[invoice.provider_reference or ""]
        if intent["client_secret"] not in page:
            self.fired("card_payment", "no way to pay", changed=True)
            return
        # The page offered exactly the amount due now.
        assert intent["status"] in UNPAID
        assert intent["amount"] == to_minor_units(invoice.amount_due, invoice.currency)
        intent.update(status="succeeded", amount_received=intent["amount"])
        self.charges[intent["id"]] = Charge(intent["id"], invoice.pk, intent["amount"])
        payload = events.intent_succeeded(
            intent["id"], intent["amount"], currency=invoice.currency.lower()
        )
        self.queue.append(payload)
        self.fired("card_payment", "charged")
        if lands_on_done and not self.jumped:
            with self.world.capture(execute=True):
                Client().get(f"/pay/{invoice.pay_token}/done")
            self.fired("pay_done")
        if deliver:
            self.deliver(len(self.queue) - 1, via_view)

    @rule(index=st.integers(0, 10**6), via_view=st.booleans())
    def deliver(self, index: int, via_view: bool) -> None:
        """Stripe delivers one of its waiting events, not necessarily the oldest."""
        if not self.queue:
            return
        payload = self.queue.pop(index % len(self.queue))
        outcome = self.sign_and_deliver(payload, via_view)
        assert not outcome.startswith("rejected"), outcome
        self.delivered.append(payload)
        self.fired("deliver", outcome.split(":")[0])

    @rule(index=st.integers(0, 10**6), via_view=st.booleans())
    def deliver_again(self, index: int, via_view: bool) -> None:
        """Stripe delivers an event a second time: nothing happens twice."""
        payload = self.pick(self.delivered, index)
        if payload is None:
            return
        before = db_state()
        outcome = self.sign_and_deliver(payload, via_view)
        assert outcome == "duplicate", outcome
        assert db_state() == before, "a duplicate event changed the database"
        self.fired("deliver_again", changed=False)

    @rule(
        kind=st.sampled_from(
            [
                "amount_received_string",
                "amount_huge",
                "amount_negative",
                "amount_missing",
                "currency_missing",
                "currency_bogus",
                "id_null",
                "object_null",
                "type_number",
                "not_an_object",
                "bad_signature",
                "refund_without_intent",
            ]
        ),
        index=st.integers(0, 10**6),
    )
    def malformed_event(self, kind: str, index: int) -> None:
        """A signed event Stripe never sends (or one not signed by Stripe): refused with
        400, nothing stored, nothing changed."""
        intent_id = self.pick(sorted(self.world.stripe.intents), index) or "pi_unknown"
        obj: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount_received": 1000,
            "currency": "usd",
        }
        event: Any = {
            "id": f"evt_{secrets.token_hex(8)}",
            "type": "payment_intent.succeeded",
            "data": {"object": obj},
        }
        match kind:
            case "amount_received_string":
                obj["amount_received"] = "1000"
            case "amount_huge":
                obj["amount_received"] = 10**20
            case "amount_negative":
                obj["amount_received"] = -5
            case "amount_missing":
                del obj["amount_received"]
            case "currency_missing":
                obj["currency"] = None
            case "currency_bogus":
                obj["currency"] = "zzz"
            case "id_null":
                obj["id"] = None
            case "object_null":
                event["data"]["object"] = None
            case "type_number":
                event["type"] = 7
            case "not_an_object":
                event = [event]
            case "refund_without_intent":
                event["type"] = "charge.refunded"
                obj.update(id="ch_x", amount_refunded=10)
        payload = json.dumps(event)
        before = db_state()
        if kind == "bad_signature":
            signature = events.sign(payload, secret="whsec_not_ours")
            try:
                webhook_receive(payload=payload.encode(), signature=signature, now=self.clock)
            except WebhookRejected as exc:
                outcome = exc.code
            else:  # pragma: no cover - the assertion below reports it
                outcome = "accepted"
        else:
            outcome = self.sign_and_deliver(payload, via_view=False)
        assert outcome in ("webhook_signature_invalid", "rejected webhook_malformed"), outcome
        assert db_state() == before, f"a malformed event ({kind}) changed the database"
        self.fired("malformed_event", kind, changed=False)

    @rule()
    def retry_given_up_events(self) -> None:
        """The operations admin retries the events the worker gave up on (waiting past
        GIVE_UP_AFTER, as when the worker was down for days)."""
        given_up = StripeEvent.objects.filter(outcome__startswith=GAVE_UP)
        ids = list(given_up.values_list("pk", flat=True))
        if not ids:
            return
        with self.world.capture(execute=True):
            report = stripe_events_retry(event_ids=ids, now=self.clock)
        self.fired("retry_given_up", f"{report.processed} processed", changed=True)

    @rule()
    def reconcile(self) -> None:
        """The reconciliation asks Stripe about unpaid invoices whose webhook is missing."""
        with self.world.capture(execute=True):
            _, lines = reconcile_payments(now=self.clock)
        recorded = [line for line in lines if ": recorded " in line]
        self.fired("reconcile", "recorded" if recorded else "nothing", changed=bool(recorded))

    # --- money out ------------------------------------------------------------------

    @rule(index=st.integers(0, 10**6), permille=st.integers(1, 1000), deliver=st.booleans())
    def refund_at_stripe(self, index: int, permille: int, deliver: bool) -> None:
        """Staff refund part of a card payment in Stripe's dashboard: `charge.refunded`
        reports the charge's refunds so far."""
        open_charges = [c for c in self.charges.values() if c.refunded_minor < c.received_minor]
        charge = self.pick(open_charges, index)
        if charge is None:
            return
        invoice = Invoice.objects.get(pk=charge.invoice_id)
        charge.refunded_minor += _part(charge.received_minor - charge.refunded_minor, permille)
        self.queue.append(
            events.charge_refunded(
                charge.intent_id,
                charge.refunded_minor,
                charge_id=f"ch_{charge.intent_id}",
                currency=invoice.currency.lower(),
            )
        )
        self.fired("refund_at_stripe")
        if deliver:
            self.deliver(len(self.queue) - 1, via_view=False)

    @rule(index=st.integers(0, 10**6), permille=st.integers(1, 1100), credit=st.booleans())
    def refund_by_hand(self, index: int, permille: int, credit: bool) -> None:
        paid = [i for i in self.invoices(number__isnull=False) if i.amount_paid > 0]
        invoice = self.pick(paid, index)
        if invoice is None:
            return
        minor = _part(to_minor_units(invoice.amount_paid, invoice.currency), permille)
        with self.step(
            "refund_by_hand_credit" if credit else "refund_by_hand",
            "refund_exceeds_payment",
            "amount_exceeds_creditable",
            "invoice_not_creditable",
        ):
            refund_record_manual(
                actor=self.admin,
                invoice_id=invoice.pk,
                amount=from_minor_units(minor, invoice.currency),
                method=PaymentMethod.BANK_TRANSFER,
                paid_on=self.today(),
                reason="Machine refund",
                credit_invoice=credit,
                now=self.clock,
            )
            self.manual_paid[invoice.pk] -= minor
            if credit and invoice.milestone_id:
                self.moved.add(invoice.milestone_id)

    @rule(index=st.integers(0, 10**6), permille=st.integers(1, 1100))
    def partial_credit_note(self, index: int, permille: int) -> None:
        invoice = self.pick(self.invoices(status__in=SENT_STATUSES), index)
        if invoice is None:
            return
        creditable = to_minor_units(invoice.amount - invoice.amount_credited, invoice.currency)
        minor = _part(creditable, permille) or 1
        with self.step("credit_note", "amount_exceeds_creditable"):
            credit_note_issue(
                actor=self.admin,
                invoice_id=invoice.pk,
                amount=from_minor_units(minor, invoice.currency),
                reason="Goodwill",
                now=self.clock,
            )
            if invoice.milestone_id:
                self.moved.add(invoice.milestone_id)

    # --- the contract ---------------------------------------------------------------

    @rule(
        index=st.integers(0, 10**6),
        factor=st.sampled_from(["0.2", "0.6", "1", "1.3", "2"]),
        extra_line=st.booleans(),
        new_milestone=st.booleans(),
        with_credit=st.booleans(),
    )
    def change_order(
        self, index: int, factor: str, extra_line: bool, new_milestone: bool, with_credit: bool
    ) -> None:
        project = self.pick(self.projects, index)
        if project is None:
            return
        project.refresh_from_db()
        lines = []
        for line in current_lines(project):
            price = (line.unit_price * Decimal(factor)).quantize(quantum(project.currency))
            lines.append(LineInput(line.description, line.quantity, price, line.tax_rate_id))
        if extra_line:
            rate = self.world.rates[index % len(self.world.rates)]
            lines.append(LineInput("Extra", Decimal(1), Decimal(7), rate.pk))
        schedule = (ScheduleChange(None, "Added work", True, Decimal(25)),) if new_milestone else ()
        try:
            order = change_order_create(
                actor=self.admin,
                project_id=project.pk,
                title="Machine amendment",
                lines=lines,
                schedule=schedule,
                now=self.clock,
            )
        except DomainError as exc:
            # Lines the quote rules refuse (a price scaled down to nothing): no draft.
            if exc.code not in ("lines_required", "line_total_zero"):
                raise
            self.fired("change_order_draft", f"refused {exc.code}")
            return
        shortfall = self.shortfall(project, order)
        outcome = self.figures.outcomes.copy()
        with self.step(
            "change_order",
            "credit_note_required",
            "draft_invoice_in_the_way",
            "shortfall_not_creditable",
            "schedule_empty",
        ):
            change_order_approve(
                actor=self.admin,
                change_order_id=order.pk,
                issue_credit_note=with_credit,
                now=self.clock,
            )
            # The shares are now what each invoiced milestone bills net of credit notes.
            self.moved -= {m.pk for m in milestones_of(project)}
        refused = {
            key.split("refused ")[1]
            for key in (self.figures.outcomes - outcome)
            if key.startswith("change_order:refused")
        }
        # A credit note is asked for (or a draft is in the way) only where more was
        # invoiced at a rate than the amended contract has at that rate.
        if refused & {"credit_note_required", "draft_invoice_in_the_way"}:
            assert shortfall, (refused, "no rate is invoiced beyond the amended contract")
        if "credit_note_required" in refused:
            assert not with_credit
        if "draft_invoice_in_the_way" in refused:
            drafts = self.invoices(project=project, status=InvoiceStatus.DRAFT)
            assert any(
                set(_drop_zero(billed_bases(d))) & set(shortfall)
                for d in drafts
                if d.invoice_type == InvoiceType.MILESTONE
            ), "no milestone draft bills a rate in shortfall"

    def shortfall(self, project: Project, order: Any) -> dict[Any, Money]:
        """Per rate, how much more the project's live milestone invoices bill (net of
        credit notes) than the change order's lines: worked out here, not by the app."""
        currency = project.currency
        after: dict[Any, Money] = {}
        for line in order.lines.all():
            rate = TaxRate(line.tax_name, line.tax_percentage)
            after[rate] = after.get(rate, Money.zero(currency)) + Money(line.line_total, currency)
        invoiced: dict[Any, Money] = {}
        for invoice in live_invoices(project):
            if invoice.invoice_type == InvoiceType.MILESTONE:
                _add(invoiced, billed_bases(invoice), currency)
        zero = Money.zero(currency)
        return {
            rate: amount - after.get(rate, zero)
            for rate, amount in invoiced.items()
            if amount > after.get(rate, zero)
        }

    @rule(index=st.integers(0, 10**6))
    def release_retainage(self, index: int) -> None:
        project = self.pick(self.projects, index)
        if project is None:
            return
        with self.step("release_retainage", "retainage_nothing_held"):
            retainage_release(actor=self.admin, project_id=project.pk, now=self.clock)

    # --- the world moves on ---------------------------------------------------------

    @rule(outage=st.booleans())
    def stripe_outage(self, outage: bool) -> None:
        """Stripe stops (or resumes) answering updates."""
        self.world.stripe.fail_updates = outage
        self.fired("stripe_outage", "down" if outage else "up")

    @rule(
        unit=st.sampled_from(["minutes", "hours", "days", "days", "years"]),
        amount=st.integers(1, 60),
        worker_meanwhile=st.booleans(),
        data=st.data(),
    )
    def tick(self, unit: str, amount: int, worker_meanwhile: bool, data: st.DataObject) -> None:
        """Time passes (a few minutes, or decades), then the periodic pass runs. With
        `worker_meanwhile` the worker also ran its pass a few minutes in (as it does every
        TICK_MINUTES); without, it was down for the whole jump. Past an hour, Stripe has
        delivered every event it still had (it retries for days), in any order."""
        jump = timedelta(days=365 * amount) if unit == "years" else timedelta(**{unit: amount})
        if jump >= timedelta(hours=1) and self.queue:
            order = data.draw(st.permutations(range(len(self.queue))))
            waiting, self.queue = self.queue, []
            for position in order:
                self.queue.append(waiting[position])
                self.deliver(len(self.queue) - 1, via_view=False)
        if worker_meanwhile and jump > timedelta(minutes=5):
            self.run_pass(self.clock + timedelta(minutes=5))
        if (self.clock + jump).year <= LAST_YEAR:
            self.clock += jump
            self.jumped = True
            days = jump / timedelta(days=1)
            self.figures.max_clock_jump_days = max(self.figures.max_clock_jump_days, days)
            self.figures.max_year = max(self.figures.max_year, self.clock.year)
        self.run_pass(self.clock)
        self.fired("tick", unit)

    def remember_refund_payloads(self) -> None:
        for row in StripeEvent.objects.filter(event_type="charge.refunded"):
            if row.payload:
                obj = row.payload["data"]["object"]
                self.refund_payloads[row.pk] = (obj["payment_intent"], int(obj["amount_refunded"]))

    def run_pass(self, now: datetime) -> None:
        # The pass may process an event and blank its payload (retention) in one go.
        self.remember_refund_payloads()
        with self.world.capture(execute=True):
            summary = run_periodic(now=now)
        failures = int(re.search(r"(\d+) failure\(s\)", summary).group(1))  # type: ignore[union-attr]
        if not self.world.stripe.fail_updates:
            assert failures == 0, summary
            # The pass brought every PaymentIntent left out of step in step.
            behind = self.invoices(intent_out_of_step=True)
            assert not behind, f"{behind} still out of step after the periodic pass"
        self.figures.outcomes["periodic_pass"] += 1

    # --- what must always hold ------------------------------------------------------

    def snapshot(self, invoice_id: int) -> tuple[Any, ...]:
        row = Invoice.objects.filter(pk=invoice_id).values(*SENT_FIELDS).get()
        lines = Invoice.objects.get(pk=invoice_id).tax_lines.values_list(*TAX_LINE_FIELDS)
        return (row, list(lines))

    @invariant()
    def holds(self) -> None:
        if not self.projects or not self.dirty:
            return
        self.dirty = False
        self.figures.invariant_checks += 1
        invoices = self.invoices()
        self.check_one_live_invoice_per_milestone()
        self.check_intents(invoices)
        self.check_numbers()
        self.check_payments(invoices)
        for invoice_id, snapshot in self.snapshots.items():
            assert self.snapshot(invoice_id) == snapshot, f"sent invoice {invoice_id} changed"
        self.check_totals()
        for project in self.projects:
            self.check_contract(project)
            held = project_retainage(project).held
            assert held.amount >= 0, f"project {project.pk} holds negative retainage {held}"
        today = self.today()
        for invoice in invoices:
            credited = invoice.credit_notes.aggregate(total=Sum("amount"))["total"] or ZERO
            assert invoice.amount_credited == credited, invoice
            if invoice.status in SENT_STATUSES:
                expected = status_for(invoice, today)
                # Overdue is set by the periodic pass (or when money moves).
                assert invoice.status == expected or (
                    expected == InvoiceStatus.OVERDUE
                    and invoice.status in (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID)
                ), (invoice.number, invoice.status, expected)

    def check_totals(self) -> None:
        assert summary_rows() == recounted_rows()
        # A customer's users all see what the customer's scope lets them see.
        viewers = [self.admin] + [
            User(role=Role.CUSTOMER, customer=customer) for customer in self.world.customers
        ]
        for viewer in viewers:
            for wanted in (InvoiceFilter(), InvoiceFilter(status=InvoiceStatus.PAID)):
                assert currency_totals(user=viewer, wanted=wanted) == recount(
                    user=viewer, wanted=wanted
                ), (viewer.role, viewer.customer_id, wanted)

    def check_one_live_invoice_per_milestone(self) -> None:
        twice = (
            Invoice.objects.filter(project__in=self.projects, milestone__isnull=False)
            .exclude(status=InvoiceStatus.CANCELLED)
            .values("milestone")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        assert not twice.exists(), list(twice)

    def check_intents(self, invoices: list[Invoice]) -> None:
        stripe = self.world.stripe
        live: dict[str, list[dict[str, Any]]] = {}
        for intent in list(stripe.intents.values()):
            if intent["status"] in UNPAID:
                live.setdefault(intent["metadata"].get("invoice_id", ""), []).append(intent)
        for invoice in invoices:
            mine = live.get(str(invoice.pk), [])
            assert len(mine) <= 1, f"{invoice} has {len(mine)} live PaymentIntents"
            if not mine:
                continue
            intent = mine[0]
            assert intent["id"] == invoice.provider_reference, (invoice, intent["id"])
            if invoice.intent_out_of_step:
                # Stripe could not be told; the pay page and the next pass catch up.
                continue
            due = (
                to_minor_units(invoice.amount_due, invoice.currency)
                if invoice.status in OPEN_STATUSES
                else 0
            )
            assert due > 0, f"{invoice} ({invoice.status}) asks for nothing but its intent is live"
            assert intent["amount"] == due, (invoice.number, intent["amount"], due)

    def check_numbers(self) -> None:
        for model, sequence in (
            (Invoice, InvoiceNumberSequence),
            (CreditNote, CreditNoteNumberSequence),
        ):
            numbers = list(
                model.objects.filter(number__isnull=False).values_list("number", flat=True)
            )
            assert len(numbers) == len(set(numbers)), f"{model.__name__} numbers repeat"
            by_year: dict[int, list[int]] = {}
            for number in numbers:
                match = NUMBER.match(number or "")
                assert match, number
                by_year.setdefault(int(match.group(1)), []).append(int(match.group(2)))
            last = dict(sequence.objects.values_list("year", "last_number"))
            for year, seqs in by_year.items():
                assert sorted(seqs) == list(range(1, len(seqs) + 1)), (model.__name__, year, seqs)
                assert last.get(year) == len(seqs), (model.__name__, year, last.get(year))

    def check_payments(self, invoices: list[Invoice]) -> None:
        for invoice in invoices:
            payments = list(invoice.payments.all())
            assert invoice.amount_paid == sum((p.amount for p in payments), ZERO), invoice
            manual = sum(
                (
                    to_minor_units(p.amount, p.currency)
                    for p in payments
                    if p.method in MANUAL_METHODS
                ),
                0,
            )
            assert manual == self.manual_paid[invoice.pk], (invoice, manual)
            for payment in payments:
                reference = payment.provider_reference or ""
                if reference.startswith("pi_"):
                    charge = self.charges[reference]
                    assert charge.invoice_id == invoice.pk
                    assert to_minor_units(payment.amount, payment.currency) == charge.received_minor
        # Each charge's refunds recorded are exactly the largest total Stripe reported in
        # an event processed so far (events may arrive in any order, or twice). A payload
        # the retention blanked (a clock jump past RETENTION_STRIPE_EVENT_DAYS) was read
        # while it was there: after the step that stored it, or before the pass that may
        # process and blank it at once.
        self.remember_refund_payloads()
        reported: dict[str, int] = {}
        for row in StripeEvent.objects.filter(event_type="charge.refunded"):
            if row.processed_at is None or row.outcome.startswith(GAVE_UP):
                continue  # waiting, or left for a person after GIVE_UP_AFTER
            intent, minor = self.refund_payloads[row.pk]
            reported[intent] = max(reported.get(intent, 0), minor)
        for intent_id, charge in self.charges.items():
            refunds = Payment.objects.filter(
                provider_reference__startswith=f"refund:ch_{intent_id}:"
            )
            given = -sum((to_minor_units(p.amount, p.currency) for p in refunds), 0)
            assert given == reported.get(intent_id, 0), (intent_id, given, reported.get(intent_id))
            assert given <= charge.received_minor

    def check_contract(self, project: Project) -> None:
        project.refresh_from_db()
        currency = project.currency
        contract = _drop_zero(project_bases(project))
        milestones = milestones_of(project)
        shares = milestone_bases(project, milestones)
        scheduled: dict[Any, Money] = {}
        for milestone in milestones:
            if milestone.is_billable:
                _add(scheduled, shares[milestone.pk], currency)
        # The schedule bills the contract exactly, per rate.
        assert _drop_zero(scheduled) == contract, (project.pk, scheduled, contract)
        live = {
            i.milestone_id: i
            for i in live_invoices(project)
            if i.invoice_type == InvoiceType.MILESTONE and i.milestone_id
        }
        invoiced: dict[Any, Money] = {}
        not_yet: dict[Any, Money] = {}
        moved: dict[Any, Money] = {}
        for milestone in milestones:
            if not milestone.is_billable:
                continue
            share = shares[milestone.pk]
            invoice = live.get(milestone.pk)
            if invoice is None:
                _add(not_yet, share, currency)
                continue
            billed = billed_bases(invoice)  # its bases less its credit notes'
            _add(invoiced, billed, currency)
            if milestone.pk in self.moved:
                _add(moved, share, currency)
                _add(moved, {r: Money.zero(currency) - a for r, a in billed.items()}, currency)
            else:
                assert _drop_zero(billed) == _drop_zero(share), (milestone.title, billed, share)
        total: dict[Any, Money] = {}
        for part in (invoiced, not_yet, moved):
            _add(total, part, currency)
        # contract = invoiced - credited + not yet invoiced (+ what staff moved on purpose)
        assert _drop_zero(total) == contract, (project.pk, total, contract)
        assert unbilled_amount(project) >= 0, project.pk


def run_figures(figures: Figures) -> dict[str, Any]:
    return {
        "runs": figures.runs,
        "steps": figures.steps,
        "rules_fired": dict(sorted(figures.rules_fired.items())),
        "outcomes": dict(sorted(figures.outcomes.items())),
        "invariant_checks": figures.invariant_checks,
        "max_clock_jump_days": round(figures.max_clock_jump_days, 2),
        "latest_year_reached": figures.max_year,
    }
