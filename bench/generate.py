"""A seeded book of business for the benchmark: `--scale 1` is 1,000 customers (each with a
portal user), 10,000 projects, 50,000 milestones and 100,000 invoices in every status,
with their tax lines, payments, credit notes, audit events and outbox emails, plus an
admin, a staff member and API tokens for the load.

    python -m bench.generate --scale 1 --seed 1 [--out credentials.json]

The rows are what the services would have left behind, so the app's own invariants hold:
each project's milestones split its contract exactly (core.tax.split_contract), an
invoice bills its milestone's share with its tax (core.tax.tax_line), at most one
invoice per milestone is not cancelled (the rest are reopened or cancelled earlier
attempts: 100,000 invoices on 50,000 milestones leave about half of them cancelled),
numbers are gap-free per year in the order invoices were sent and the sequences stand
at the last number used, amount_paid is the sum of the payments, a credited invoice has
its credit note, and a sent invoice's reminder steps already reached are in the outbox.
Except the `due` set: pending invoices whose due date has passed, which the next
periodic pass marks overdue and reminds (see docs/benchmarks.md).

Everything goes in through the models (bulk_create, one transaction), so database
triggers on the tables fire as for any insert. A sent invoice is inserted with its final
values and never updated; its tax lines are inserted first, under invoice ids reserved
in advance (the foreign keys are checked at commit), because the database refuses new
tax lines on an invoice that was already sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

# Statuses of the invoices that are not cancelled, after the drafts are chosen.
LIVE_WEIGHTS = {
    "pending": 0.15,
    "partially_paid": 0.06,
    "overdue": 0.12,
    "paid": 0.64,
    "credited": 0.03,
}
# How many of a project's five milestones are completed (each has its live invoice).
COMPLETED_WEIGHTS = {5: 0.4, 4: 0.2, 3: 0.2, 2: 0.2}
PERCENTAGES = [Decimal(p) for p in ("10", "20", "20", "25", "25")]
PROJECTS_PER_CUSTOMER = 10
INVOICES_PER_PROJECT = 10
# Drafts are 10 % of the live invoices, but never fewer than this (within reason): the
# bulk send (1,000) and the send scenario consume them at every scale.
MIN_DRAFTS = 1500
PASSWORD = "bench-password-1"
ADMIN_EMAIL = "admin@bench.example"
STAFF_EMAIL = "staff@bench.example"
BATCH = 2000


@dataclass
class Slot:
    """One invoice to be: its project, milestone, status and dates."""

    project: int  # index into the project list
    milestone: int  # index into the project's milestones (0..4)
    status: str
    live: bool
    was_sent: bool = False
    due: bool = False  # pending, past its due date: the next periodic pass has work
    created_at: datetime | None = None
    sent_at: datetime | None = None
    issue_date: date | None = None
    due_date: date | None = None
    payments: list[tuple[Decimal, datetime]] = field(default_factory=list)
    settled_at: datetime | None = None  # paid, cancelled or credited
    pk: int = 0


def _weighted(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _at(day: date, rng: random.Random, now: datetime) -> datetime:
    """A working-hours moment of `day` (UTC), never after `now`."""
    moment = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(9 * 3600)
    )
    return min(moment, now - timedelta(seconds=rng.randrange(1, 600)))


def reserve_ids(model: Any, count: int) -> list[int]:
    """`count` primary keys of `model` that no other insert will take: drawn from the
    PostgreSQL sequence, or past the largest id on SQLite (the smoke test; one writer)."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return sorted(row[0] for row in cursor.fetchall())
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - our table
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + count))


def insert(model: Any, rows: list[dict[str, Any]], *, ids: bool = True, **same: Any) -> list[int]:
    """Insert `rows` (field attnames to values; `same` holds values every row shares) into
    `model`'s table; a field given nowhere takes the model's default, an auto_now field
    the current time, a nullable one NULL, and any other is an error. Returns the ids:
    the rows' own "id", else ones reserved for them (unless `ids` is False).

    On PostgreSQL the rows go in with COPY, which fires the table's triggers and checks
    its constraints like any INSERT, at a fraction of bulk_create's cost in Python (it
    prepares every value of every row through the field classes); elsewhere (SQLite, the
    smoke test) through bulk_create."""
    from django.db import connection
    from django.db.models import JSONField
    from django.utils import timezone

    if not rows:
        return []
    now = timezone.now()
    given = "id" in rows[0]
    keys = [k for k in rows[0] if k != "id"]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    known = {f.attname for f in fields}
    unknown = (set(keys) | set(same)) - known
    if unknown:
        raise ValueError(f"{model.__name__} has no field {sorted(unknown)}")
    constants: dict[str, Any] = {}
    for f in fields:
        if f.attname in keys:
            continue
        if f.attname in same:
            constants[f.attname] = same[f.attname]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            constants[f.attname] = now
        elif f.has_default():
            constants[f.attname] = f.get_default()
        elif f.null:
            constants[f.attname] = None
        else:
            raise ValueError(f"{model.__name__}.{f.attname} needs a value")
    pks = [row["id"] for row in rows] if given else reserve_ids(model, len(rows)) if ids else []
    columns = (["id"] if pks else []) + keys + list(constants)
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [
                model(**({"id": pk} if pks and not given else {}), **row, **constants)
                for pk, row in zip(pks or [None] * len(rows), rows, strict=True)
            ],
            batch_size=500,
        )
        return pks
    from psycopg.types.json import Jsonb

    json = {f.attname for f in fields if isinstance(f, JSONField)}
    tail = tuple(Jsonb(v) if k in json else v for k, v in constants.items())
    wrap = [k in json for k in keys]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for n, row in enumerate(rows):
            values = [row[k] for k in keys]
            if json:
                values = [Jsonb(v) if w else v for v, w in zip(values, wrap, strict=True)]
            copy.write_row(((pks[n],) if pks else ()) + tuple(values) + tail)
    return pks


def _reminder_steps(sent_at: datetime, due_date: date, today: date, steps: list[int]) -> list[int]:
    """The reminder steps the periodic pass would have queued by today, one per tick
    (see billing.services.reminders._step_due): those whose day came after the sending
    day and by today."""
    sent_day = sent_at.date()
    return [d for d in steps if sent_day < due_date + timedelta(days=d) <= today]


def generate(*, scale: float, seed: int = 1, verbose: bool = True) -> dict[str, Any]:
    """Fill the (migrated, empty) database; return counts, timings and credentials."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from tranche.accounts.models import ApiToken, Customer, Role, TaxRate, User
    from tranche.accounts.tokens import hash_token, new_token
    from tranche.billing.models import (
        CreditNote,
        CreditNoteNumberSequence,
        CreditNoteTaxLine,
        EventKind,
        Invoice,
        InvoiceEvent,
        InvoiceNumberSequence,
        InvoiceTaxLine,
        Payment,
        PaymentMethod,
    )
    from tranche.core.money import Money
    from tranche.core.tax import PriceMode, split_contract, tax_line
    from tranche.core.tax import TaxRate as Rate
    from tranche.notifications.models import OutboxEmail
    from tranche.projects.models import Milestone, Project
    from tranche.sales.models import Quote, QuoteLine, ScheduleItem

    started = time.perf_counter()
    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate(now)
    steps = sorted(settings.REMINDER_DAYS)
    n_customers = max(1, round(1000 * scale))
    n_projects = n_customers * PROJECTS_PER_CUSTOMER
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 2)
        if verbose:
            print(f"  generate: {name} {timings[name]:.1f}s", file=sys.stderr, flush=True)
        return time.perf_counter()

    # --- the plan: every invoice's project, milestone, status and dates ----------------
    completed = [_weighted(rng, COMPLETED_WEIGHTS) for _ in range(n_projects)]
    slots: list[Slot] = []
    for p, k in enumerate(completed):
        slots.extend(Slot(p, m, "", live=True) for m in range(k))
        slots.extend(
            Slot(p, rng.randrange(5), "cancelled", live=False)
            for _ in range(INVOICES_PER_PROJECT - k)
        )
    live = [s for s in slots if s.live]
    rng.shuffle(live)
    n_drafts = max(round(0.10 * len(live)), min(MIN_DRAFTS, len(live) // 2))
    for s in live[:n_drafts]:
        s.status = "draft"
    for s in live[n_drafts:]:
        s.status = _weighted(rng, LIVE_WEIGHTS)
    # Every status at every scale, however small (the smoke test's, too).
    for s, status in zip(live[n_drafts:], LIVE_WEIGHTS, strict=False):
        s.status = status
    pending = [s for s in live if s.status == "pending"]
    n_due = min(len(pending) // 2, max(1, round(0.01 * len(slots))))
    for s in pending[:n_due]:
        s.due = True

    terms_of = [rng.choice((14, 14, 30, 45)) for _ in range(n_customers)]
    currency_of = ["EUR" if rng.random() < 0.2 else "USD" for _ in range(n_customers)]

    def day_before(days: int) -> date:
        return today - timedelta(days=days)

    for s in slots:
        terms = terms_of[s.project // PROJECTS_PER_CUSTOMER]
        if s.status == "draft":
            s.created_at = _at(day_before(rng.randrange(0, 60)), rng, now)
            s.issue_date = s.created_at.date()
            s.due_date = s.issue_date + timedelta(days=terms)
            continue
        if s.status == "cancelled" and rng.random() < 0.5:  # a draft, cancelled
            s.created_at = _at(day_before(rng.randrange(2, 720)), rng, now)
            s.issue_date = s.created_at.date()
            s.due_date = s.issue_date + timedelta(days=terms)
            s.settled_at = min(s.created_at + timedelta(days=rng.randrange(0, 5)), now)
            continue
        s.was_sent = True
        if s.status in ("pending", "partially_paid") and not s.due:
            sent_day = day_before(rng.randrange(1, terms + 1))  # not yet due
        elif s.due:
            sent_day = day_before(terms + rng.randrange(1, 6))  # due in the last five days
        elif s.status == "overdue":
            sent_day = day_before(terms + rng.randrange(1, 400))
        else:
            sent_day = day_before(rng.randrange(2, 720))
        s.sent_at = _at(sent_day, rng, now)
        s.created_at = s.sent_at - timedelta(days=rng.randrange(0, 4), minutes=5)
        s.issue_date = sent_day
        s.due_date = sent_day + timedelta(days=terms)
        if s.status in ("paid", "credited", "cancelled"):
            s.settled_at = min(s.sent_at + timedelta(days=rng.randrange(1, terms + 20)), now)

    # --- people, rate, customers ---------------------------------------------------------
    t = time.perf_counter()
    password = make_password(PASSWORD)
    with transaction.atomic():
        admin_id, staff_id = insert(
            User,
            [
                {"email": ADMIN_EMAIL, "full_name": "Bench Admin", "role": Role.ADMIN},
                {"email": STAFF_EMAIL, "full_name": "Bench Staff", "role": Role.STAFF},
            ],
            password=password,
            date_joined=now,
        )
        (vat_id,) = insert(TaxRate, [{"name": "VAT", "percentage": Decimal("20.00")}])
        rate = Rate("VAT", Decimal("20.00"))
        customer_ids = insert(
            Customer,
            [
                {
                    "name": f"Customer {i:05d} Ltd",
                    "billing_email": f"billing{i:05d}@customer.example",
                    "contact_name": f"Contact {i:05d}",
                    "address": f"{i} Bench Street\nTestville",
                    "payment_terms_days": terms_of[i],
                }
                for i in range(n_customers)
            ],
            created_at=now,
            updated_at=now,
        )
        portal_emails = [f"user{i:05d}@customer.example" for i in range(n_customers)]
        portal_ids = insert(
            User,
            [
                {"email": portal_emails[i], "full_name": f"Contact {i:05d}", "customer_id": c}
                for i, c in enumerate(customer_ids)
            ],
            role=Role.CUSTOMER,
            password=password,
            date_joined=now,
        )
        t = lap("people", t)

        # --- quotes, projects, milestones ---------------------------------------------
        project_start: list[datetime] = [now] * n_projects
        for s in slots:
            assert s.created_at is not None
            if s.created_at < project_start[s.project]:
                project_start[s.project] = s.created_at
        project_start = [
            (at if at < now else _at(day_before(30), rng, now)) - timedelta(days=7)
            for at in project_start
        ]
        totals = [Decimal(rng.randrange(2_000_00, 150_000_00)) / 100 for _ in range(n_projects)]
        customer_of = [customer_ids[p // PROJECTS_PER_CUSTOMER] for p in range(n_projects)]
        project_currency = [currency_of[p // PROJECTS_PER_CUSTOMER] for p in range(n_projects)]
        quote_ids = insert(
            Quote,
            [
                {
                    "customer_id": customer_of[p],
                    "title": f"Project {p:06d}",
                    "currency": project_currency[p],
                    "total": totals[p],
                    "created_at": project_start[p] - timedelta(days=3),
                    "sent_at": project_start[p] - timedelta(days=2),
                    "accepted_at": project_start[p],
                }
                for p in range(n_projects)
            ],
            status="accepted",
            price_mode=PriceMode.EXCLUSIVE,
            created_by_id=admin_id,
            accepted_by_id=admin_id,
        )
        insert(
            QuoteLine,
            [
                {"quote_id": q, "unit_price": totals[p], "line_total": totals[p]}
                for p, q in enumerate(quote_ids)
            ],
            position=1,
            description="The whole job",
            quantity=Decimal(1),
            tax_rate_id=vat_id,
            tax_name="VAT",
            tax_percentage=Decimal("20.00"),
        )
        insert(
            ScheduleItem,
            [
                {
                    "quote_id": q,
                    "position": m + 1,
                    "title": f"Stage {m + 1}",
                    "billing_percentage": PERCENTAGES[m],
                }
                for q in quote_ids
                for m in range(5)
            ],
            is_billable=True,
        )
        project_ids = insert(
            Project,
            [
                {
                    "name": f"Project {p:06d}",
                    "customer_id": customer_of[p],
                    "origin_quote_id": q,
                    "currency": project_currency[p],
                    "contract_total": totals[p],
                    "contract_bases": [
                        {"name": "VAT", "percentage": "20.00", "amount": str(totals[p])}
                    ],
                    "created_at": project_start[p],
                }
                for p, q in enumerate(quote_ids)
            ],
            price_mode=PriceMode.EXCLUSIVE,
            created_by_id=admin_id,
        )
        t = lap("quotes and projects", t)

        live_of: dict[tuple[int, int], Slot] = {(s.project, s.milestone): s for s in live}
        milestone_rows = []
        for p in range(n_projects):
            for m in range(5):
                done = live_of.get((p, m))
                milestone_rows.append(
                    {
                        "project_id": project_ids[p],
                        "title": f"Stage {m + 1}",
                        "position": m + 1,
                        "status": "completed" if done else "pending",
                        "billing_percentage": PERCENTAGES[m],
                        "planned_date": today + timedelta(days=30 * (m - 2)),
                        "actual_date": done.created_at.date() if done and done.created_at else None,
                        "completed_at": done.created_at if done else None,
                        "completed_by_id": admin_id if done else None,
                        "created_at": project_start[p],
                        "updated_at": project_start[p],
                    }
                )
        milestone_ids = insert(Milestone, milestone_rows, is_billable=True)
        t = lap("milestones", t)

        # --- invoices and their tax lines -------------------------------------------------
        shares = []  # per project: per milestone (net, tax, gross)
        for p in range(n_projects):
            currency = project_currency[p]
            split = split_contract(
                {rate: Money(totals[p], currency)}, PERCENTAGES, currency=currency
            )
            lines = [tax_line(rate, b[rate], mode=PriceMode.EXCLUSIVE) for b in split]
            shares.append([(ln.net.amount, ln.tax.amount, ln.gross.amount) for ln in lines])

        slots.sort(key=lambda s: s.created_at)  # type: ignore[arg-type,return-value]
        for s, pk in zip(slots, reserve_ids(Invoice, len(slots)), strict=True):
            s.pk = pk
        numbers: Counter[int] = Counter()
        number_of: dict[int, str] = {}
        for s in sorted((s for s in slots if s.was_sent), key=lambda s: s.sent_at):  # type: ignore[arg-type,return-value]
            assert s.sent_at is not None
            year = s.sent_at.year
            numbers[year] += 1
            number_of[s.pk] = settings.INVOICE_NUMBER_FORMAT.format(year=year, seq=numbers[year])

        # Payments: paid in full (one or two), part paid, some overdue part paid.
        cent = Decimal("0.01")
        for s in slots:
            gross = shares[s.project][s.milestone][2]
            if s.status == "paid":
                assert s.settled_at is not None
                assert s.sent_at is not None
                if rng.random() < 0.2:
                    first = (gross * Decimal(rng.randrange(20, 80)) / 100).quantize(cent)
                    early = s.settled_at - (s.settled_at - s.sent_at) / 2
                    s.payments = [(first, early), (gross - first, s.settled_at)]
                else:
                    s.payments = [(gross, s.settled_at)]
            elif s.status == "partially_paid" or (s.status == "overdue" and rng.random() < 0.3):
                assert s.sent_at is not None
                part = (gross * Decimal(rng.randrange(20, 80)) / 100).quantize(cent)
                s.payments = [(part, min(s.sent_at + timedelta(days=rng.randrange(1, 10)), now))]

        # The lines first: the database refuses new lines on an invoice already sent.
        insert(
            InvoiceTaxLine,
            [
                {
                    "invoice_id": s.pk,
                    "net_amount": shares[s.project][s.milestone][0],
                    "tax_amount": shares[s.project][s.milestone][1],
                    "gross_amount": shares[s.project][s.milestone][2],
                }
                for s in slots
            ],
            position=1,
            name="VAT",
            rate_percentage=Decimal("20.00"),
            percentage=Decimal("20.00"),
            ids=False,
        )
        t = lap("invoice tax lines", t)

        invoice_rows = []
        for s in slots:
            p = s.project
            c = p // PROJECTS_PER_CUSTOMER
            net, tax, gross = shares[p][s.milestone]
            sent = s.was_sent
            token = f"benchpay{s.pk:012d}{rng.getrandbits(64):016x}" if sent else None
            moments = [s.created_at, s.sent_at, s.settled_at, *(at for _a, at in s.payments)]
            invoice_rows.append(
                {
                    "id": s.pk,
                    "project_id": project_ids[p],
                    "quote_id": quote_ids[p],
                    "milestone_id": milestone_ids[p * 5 + s.milestone],
                    "customer_id": customer_ids[c],
                    "number": number_of.get(s.pk),
                    "status": s.status,
                    "currency": currency_of[c],
                    "amount": gross,
                    "amount_paid": sum((a for a, _at in s.payments), Decimal(0)),
                    "amount_credited": gross if s.status == "credited" else Decimal(0),
                    "contract_amount": net,
                    "net_amount": net,
                    "tax_amount": tax,
                    "issue_date": s.issue_date,
                    "due_date": s.due_date,
                    "customer_name": f"Customer {c:05d} Ltd",
                    "customer_email": f"billing{c:05d}@customer.example",
                    "payment_gateway": "sandbox" if sent else "",
                    "provider_reference": f"sandbox_bench_{s.pk}" if sent else None,
                    "pay_token": token,
                    "payment_link": f"{settings.BASE_URL}/pay/{token}" if token else "",
                    "sent_at": s.sent_at,
                    "sent_by_id": admin_id if sent else None,
                    "paid_at": s.settled_at if s.status == "paid" else None,
                    "cancelled_at": s.settled_at if s.status == "cancelled" else None,
                    "cancelled_by_id": admin_id if s.status == "cancelled" else None,
                    "cancel_reason": "Superseded" if s.status == "cancelled" else "",
                    "created_at": s.created_at,
                    "updated_at": max(m for m in moments if m is not None),
                }
            )
        insert(
            Invoice,
            invoice_rows,
            invoice_type="milestone",
            price_mode=PriceMode.EXCLUSIVE,
            tax_treatment="standard",
            description="Payment for a completed milestone",
            created_by_id=admin_id,
            ids=False,
        )
        t = lap("invoices", t)

        # --- payments, credit notes, sequences ----------------------------------------------
        payment_rows = []
        for s in slots:
            for n, (amount, at) in enumerate(s.payments):
                online = rng.random() < 0.5
                payment_rows.append(
                    {
                        "invoice_id": s.pk,
                        "amount": amount,
                        "currency": currency_of[s.project // PROJECTS_PER_CUSTOMER],
                        "method": PaymentMethod.SANDBOX if online else PaymentMethod.BANK_TRANSFER,
                        "provider_reference": f"sandbox_paid_{s.pk}_{n}" if online else None,
                        "reference": "" if online else f"BT-{s.pk}-{n}",
                        "received_on": at.date(),
                        "recorded_by_id": None if online else admin_id,
                        "created_at": at,
                    }
                )
        insert(Payment, payment_rows, ids=False)

        credited = sorted(
            (s for s in slots if s.status == "credited"),
            key=lambda s: s.settled_at,  # type: ignore[arg-type,return-value]
        )
        note_numbers: Counter[int] = Counter()
        note_rows = []
        for s in credited:
            assert s.settled_at is not None
            year = s.settled_at.year
            note_numbers[year] += 1
            net, tax, gross = shares[s.project][s.milestone]
            c = s.project // PROJECTS_PER_CUSTOMER
            note_rows.append(
                {
                    "invoice_id": s.pk,
                    "customer_id": customer_ids[c],
                    "number": f"CN-{year}-{note_numbers[year]:05d}",
                    "currency": currency_of[c],
                    "amount": gross,
                    "net_amount": net,
                    "tax_amount": tax,
                    "issue_date": s.settled_at.date(),
                    "customer_name": f"Customer {c:05d} Ltd",
                    "customer_email": f"billing{c:05d}@customer.example",
                    "issued_at": s.settled_at,
                    "emailed_at": s.settled_at,
                }
            )
        note_ids = insert(
            CreditNote, note_rows, kind="full", reason="Work not delivered", issued_by_id=admin_id
        )
        insert(
            CreditNoteTaxLine,
            [
                {
                    "credit_note_id": pk,
                    "net_amount": row["net_amount"],
                    "tax_amount": row["tax_amount"],
                    "gross_amount": row["amount"],
                }
                for pk, row in zip(note_ids, note_rows, strict=True)
            ],
            position=1,
            name="VAT",
            rate_percentage=Decimal("20.00"),
            percentage=Decimal("20.00"),
            ids=False,
        )
        insert(
            InvoiceNumberSequence,
            [{"year": y, "last_number": n} for y, n in sorted(numbers.items())],
            ids=False,
        )
        insert(
            CreditNoteNumberSequence,
            [{"year": y, "last_number": n} for y, n in sorted(note_numbers.items())],
            ids=False,
        )
        t = lap("payments and credit notes", t)

        # --- the audit trail -------------------------------------------------------------
        events = []
        for s in slots:
            gross = shares[s.project][s.milestone][2]
            milestone_id = milestone_ids[s.project * 5 + s.milestone]
            events.append(
                {
                    "invoice_id": s.pk,
                    "actor_id": admin_id,
                    "kind": EventKind.CREATED,
                    "details": {"milestone_id": milestone_id, "amount": str(gross)},
                    "created_at": s.created_at,
                }
            )
            if s.was_sent:
                events.append(
                    {
                        "invoice_id": s.pk,
                        "actor_id": admin_id,
                        "kind": EventKind.SENT,
                        "details": {
                            "number": number_of[s.pk],
                            "gateway": "sandbox",
                            "provider_reference": f"sandbox_bench_{s.pk}",
                        },
                        "created_at": s.sent_at,
                    }
                )
            for amount, at in s.payments:
                events.append(
                    {
                        "invoice_id": s.pk,
                        "actor_id": None,
                        "kind": EventKind.PAYMENT_RECORDED,
                        "details": {"amount": str(amount)},
                        "created_at": at,
                    }
                )
            if s.status == "overdue":
                assert s.due_date is not None
                events.append(
                    {
                        "invoice_id": s.pk,
                        "actor_id": None,
                        "kind": EventKind.STATUS_CHANGED,
                        "details": {"old": "pending", "new": "overdue"},
                        "created_at": _at(s.due_date + timedelta(days=1), rng, now),
                    }
                )
            elif s.status in ("cancelled", "credited"):
                cancelled = s.status == "cancelled"
                events.append(
                    {
                        "invoice_id": s.pk,
                        "actor_id": admin_id,
                        "kind": EventKind.CANCELLED if cancelled else EventKind.CREDITED,
                        "details": {"reason": "Superseded"},
                        "created_at": s.settled_at,
                    }
                )
        insert(InvoiceEvent, events, ids=False)
        t = lap("invoice events", t)

        # --- the outbox: what the services queued (and the worker delivered) -------------
        outbox = []

        def email(s: Slot, kind: str, at: datetime, step: str = "") -> None:
            c = s.project // PROJECTS_PER_CUSTOMER
            number = number_of[s.pk]
            outbox.append(
                {
                    "key": f"invoice:{s.pk}:{kind}{':' + step if step else ''}",
                    "kind": kind,
                    "to": f"billing{c:05d}@customer.example",
                    "subject": f"{kind.replace('_', ' ').capitalize()}: {number}",
                    "body_text": f"Dear Contact {c:05d},\n\nInvoice {number}.\n",
                    "body_html": f"<p>Invoice {number}.</p>",
                    "attachments": (
                        [{"kind": "invoice_pdf", "invoice_id": s.pk}]
                        if kind == "invoice_sent"
                        else []
                    ),
                    "next_attempt_at": at,
                    "sent_at": at + timedelta(seconds=5),
                    "created_at": at,
                }
            )

        for s in slots:
            if not s.was_sent:
                continue
            assert s.sent_at is not None
            assert s.due_date is not None
            email(s, "invoice_sent", s.sent_at)
            if s.status in ("pending", "partially_paid", "overdue"):
                reached = _reminder_steps(s.sent_at, s.due_date, today, steps)
                if s.due:
                    reached = reached[:-1]  # the step the next periodic pass queues
                for step in reached:
                    day = s.due_date + timedelta(days=step)
                    email(s, "invoice_reminder", _at(day, rng, now), str(step))
            elif s.status == "paid":
                assert s.settled_at is not None
                email(s, "invoice_paid", s.settled_at)
            elif s.status == "cancelled":
                assert s.settled_at is not None
                email(s, "invoice_cancelled", s.settled_at)
        insert(OutboxEmail, outbox, status="sent", attempts=1, ids=False)
        t = lap("outbox", t)

        tokens = {name: new_token() for name in ("admin", "staff", "customer")}
        insert(
            ApiToken,
            [
                {"user_id": user_id, "token_hash": hash_token(token), "prefix": token[:12]}
                for user_id, token in zip(
                    (admin_id, staff_id, portal_ids[0]), tokens.values(), strict=True
                )
            ],
            created_at=now,
            ids=False,
        )

    seconds = round(time.perf_counter() - started, 2)
    statuses = Counter(s.status for s in slots)
    return {
        "scale": scale,
        "seed": seed,
        "seconds": seconds,
        "timings": timings,
        "today": today.isoformat(),
        "counts": {
            "customers": n_customers,
            "users": len(portal_ids) + 2,
            "projects": n_projects,
            "milestones": len(milestone_ids),
            "pending_milestones": sum(1 for m in milestone_rows if m["status"] == "pending"),
            "invoices": len(slots),
            "invoices_due": n_due,
            "payments": len(payment_rows),
            "credit_notes": len(note_rows),
            "invoice_events": len(events),
            "outbox_emails": len(outbox),
            **{f"status_{k}": v for k, v in sorted(statuses.items())},
        },
        "password": PASSWORD,
        "users": {
            "admin": ADMIN_EMAIL,
            "staff": STAFF_EMAIL,
            "customer": portal_emails[0],
        },
        "customer_id": customer_ids[0],
        "tokens": tokens,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write counts and credentials here (JSON)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tranche.settings")
    import django

    django.setup()
    result = generate(scale=args.scale, seed=args.seed)
    print(
        f"generated scale {args.scale} in {result['seconds']:.1f}s: "
        + ", ".join(f"{k} {v}" for k, v in result["counts"].items())
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
