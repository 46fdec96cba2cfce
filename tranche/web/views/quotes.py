"""Quotes for staff: the list, the editor with its live preview, sending, accepting on
the customer's behalf and declining. The list and a quote's page serve customers too
(through `quote_portal`, which shows them only what they may see).

The editor's form reads text into the services' inputs (numbers written as numbers) and
nothing more: every rule, total and amount comes from `sales.terms.quote_terms`, the
function the services themselves check with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST
from pydantic import TypeAdapter, ValidationError

from tranche.accounts.access import require_staff
from tranche.accounts.business import business_profile
from tranche.accounts.models import Customer, TaxRate, TaxTreatment, User
from tranche.accounts.selectors import customer_list
from tranche.accounts.tax_rates import rates_for_choice
from tranche.billing.services.acceptance import quote_accept
from tranche.core.db import valid_id
from tranche.core.errors import DomainError, NotFound
from tranche.core.schemas import MoneyIn, Percentage, Quantity
from tranche.core.tax import PriceMode
from tranche.core.tax import TaxRate as CoreTaxRate
from tranche.notifications.quotes import quote_send
from tranche.sales.models import Quote, QuoteStatus
from tranche.sales.selectors import access_quote, quote_events, quote_search, quote_statuses
from tranche.sales.services import (
    LineInput,
    ScheduleInput,
    quote_create,
    quote_decline,
    quote_terms_of,
    quote_update,
)
from tranche.sales.terms import Problem, QuoteTerms, quote_terms
from tranche.web.views import quote_portal
from tranche.web.views.common import act, page_of, search_of, user_of

MAX_ROWS = 100
_QUANTITY = TypeAdapter(Quantity)
_PRICE = TypeAdapter(MoneyIn)
_PERCENTAGE = TypeAdapter(Percentage)


# --- the list ------------------------------------------------------------------------------


@login_required
def quotes(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    search = search_of(request)
    statuses = quote_statuses(user)
    status = request.GET.get("status", "")
    if status not in {value for value, _ in statuses}:
        status = ""
    rows = quote_search(user=user, search=search, status=status or None)
    if user.is_customer:
        # What waits for the customer's answer comes first.
        rows = rows.order_by(
            Case(
                When(status=QuoteStatus.SENT, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            "-created_at",
            "-id",
        )
    page = page_of(request, rows)
    return render(
        request,
        "web/quotes/list.html",
        {"page": page, "search": search, "status": status, "statuses": statuses},
    )


# --- the editor's form ---------------------------------------------------------------------


@dataclass
class LineRow:
    description: str = ""
    quantity: str = "1"
    unit_price: str = ""
    tax_rate: str = ""  # the chosen TaxRate's id; "" for no tax


@dataclass
class ItemRow:
    title: str = ""
    billable: bool = True
    percentage: str = ""
    deposit: bool = False  # billed on acceptance


@dataclass
class QuoteForm:
    """The editor's fields as typed, the inputs read from them, and the errors by field
    (the form's own "not a number" ones and the rules `quote_terms` found)."""

    customer: str = ""
    title: str = ""
    currency: str = "USD"
    lines: list[LineRow] = field(default_factory=lambda: [LineRow()])
    items: list[ItemRow] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    line_inputs: list[LineInput | None] = field(default_factory=list)
    item_inputs: list[ScheduleInput | None] = field(default_factory=list)
    terms: QuoteTerms | None = None
    focus: str = ""
    # Set by the view before `check`: the rates the selects list (offered ones, and any
    # retired one a line still has), the quote's price mode, the customer's treatment.
    rates: list[TaxRate] = field(default_factory=list)
    mode: str = PriceMode.EXCLUSIVE
    exempt: bool = False

    @classmethod
    def of(cls, quote: Quote) -> QuoteForm:
        return cls(
            customer=str(quote.customer_id),
            title=quote.title,
            currency=quote.currency,
            lines=[
                LineRow(
                    line.description,
                    f"{line.quantity.normalize():f}",
                    line.each.api,
                    str(line.tax_rate_id or ""),
                )
                for line in quote.lines.all()
            ],
            items=[
                ItemRow(
                    item.title,
                    item.is_billable,
                    f"{item.billing_percentage.normalize():f}" if item.billing_percentage else "",
                    item.bill_on_acceptance,
                )
                for item in quote.schedule.all()
            ],
        )

    @classmethod
    def posted(cls, data: QueryDict) -> QuoteForm:
        def rows(prefix: str) -> range:
            try:
                count = int(data.get(f"{prefix}_count", "0"))
            except ValueError:
                count = 0
            return range(1, min(max(count, 0), MAX_ROWS) + 1)

        form = cls(
            customer=data.get("customer", "").strip(),
            title=data.get("title", "")[:200],
            currency=data.get("currency", "").strip()[:3],
            lines=[
                LineRow(
                    data.get(f"line-{n}-description", "")[:500],
                    data.get(f"line-{n}-quantity", "").strip()[:30],
                    data.get(f"line-{n}-unit_price", "").strip()[:30],
                    data.get(f"line-{n}-tax_rate", "").strip()[:20],
                )
                for n in rows("line")
            ],
            items=[
                ItemRow(
                    data.get(f"item-{n}-title", "")[:200],
                    data.get(f"item-{n}-billable") == "on",
                    data.get(f"item-{n}-percentage", "").strip()[:10],
                    data.get(f"item-{n}-deposit") == "on",
                )
                for n in rows("item")
            ],
        )
        form._edit_rows(data)
        return form

    def _edit_rows(self, data: QueryDict) -> None:
        """The row buttons: add, remove, and move schedule items up or down."""

        def index(name: str, rows: list[LineRow] | list[ItemRow]) -> int | None:
            try:
                value = int(data.get(name, ""))
            except ValueError:
                return None
            return value - 1 if 1 <= value <= len(rows) else None

        # The page reloads after a row button: focus goes where the person is working.
        if "add_line" in data and len(self.lines) < MAX_ROWS:
            self.lines.append(LineRow())
            self.focus = f"line-{len(self.lines)}-description"
        if "add_item" in data and len(self.items) < MAX_ROWS:
            self.items.append(ItemRow())
            self.focus = f"item-{len(self.items)}-title"
        if (i := index("remove_line", self.lines)) is not None:
            del self.lines[i]
            self.focus = "add-line"
        if (i := index("remove_item", self.items)) is not None:
            del self.items[i]
            self.focus = "add-item"
        if (i := index("item_up", self.items)) is not None and i > 0:
            self.items[i - 1], self.items[i] = self.items[i], self.items[i - 1]
            self.focus = f"item-{i}-title"
        if (i := index("item_down", self.items)) is not None and i < len(self.items) - 1:
            self.items[i + 1], self.items[i] = self.items[i], self.items[i + 1]
            self.focus = f"item-{i + 2}-title"

    def _error(self, key: str, sentence: str) -> None:
        self.errors.setdefault(key, []).append(sentence)

    def _number(self, adapter: TypeAdapter[Decimal], text: str, key: str, what: str) -> Decimal:
        try:
            return adapter.validate_python(text)
        except ValidationError:
            self._error(key, what)
            raise

    def _line(self, n: int, row: LineRow) -> LineInput | None:
        if not (row.description.strip() or row.unit_price):
            return None  # a row nothing was typed in yet
        try:
            quantity = self._number(
                _QUANTITY,
                row.quantity,
                f"line-{n}-quantity",
                f"Line {n}: write the quantity as a number greater than 0, like 1 or 2.5.",
            )
            price = self._number(
                _PRICE,
                row.unit_price,
                f"line-{n}-unit_price",
                f"Line {n}: write the unit price as an amount, like 1200 or 80.50.",
            )
        except ValidationError:
            return None
        if not row.tax_rate:
            return LineInput(row.description, quantity, price)
        rate = next((r for r in self.rates if str(r.pk) == row.tax_rate), None)
        if rate is None or not rate.is_active:
            self._error(
                f"line-{n}-tax_rate",
                f"Line {n}: “{rate.name}” is retired; choose another tax rate."
                if rate is not None
                else f"Line {n}: choose a tax rate from the list.",
            )
            return None
        return LineInput(
            row.description, quantity, price, rate.pk, CoreTaxRate(rate.name, rate.percentage)
        )

    def _item(self, n: int, item: ItemRow) -> ScheduleInput | None:
        if not (item.title.strip() or item.percentage):
            return None
        percentage: Decimal | None = None
        if item.percentage:
            try:
                percentage = self._number(
                    _PERCENTAGE,
                    item.percentage,
                    f"item-{n}-percentage",
                    f"Schedule item {n}: write the percentage as a number from 0 to 100, "
                    "like 30 or 33.33.",
                )
            except ValidationError:
                return None
        return ScheduleInput(item.title, item.billable, percentage, item.deposit)

    def check(self, *, saving: bool = False) -> QuoteTerms:
        """Read the rows into the services' inputs and work out the terms with the
        services' own function. A row nothing was typed in is left out (when saving, it
        is dropped, so the numbering is the saved one)."""
        self.errors = {}
        if saving:
            self.lines = [r for r in self.lines if r.description.strip() or r.unit_price]
            self.items = [i for i in self.items if i.title.strip() or i.percentage]
            if not self.customer_id():
                self._error("customer", "Choose the customer this quote is for.")
        self.line_inputs = [self._line(n, row) for n, row in enumerate(self.lines, 1)]
        self.item_inputs = [self._item(n, item) for n, item in enumerate(self.items, 1)]
        terms = quote_terms(
            title=self.title,
            currency=self.currency,
            lines=self.line_inputs,
            schedule=self.item_inputs,
            mode=PriceMode(self.mode),
            exempt=self.exempt,
        )
        self.problems = list(terms.problems)
        for problem in terms.problems:
            key = (
                problem.field.replace("schedule-", "item-")
                .replace("billing_percentage", "percentage")
                .replace("bill_on_acceptance", "deposit")
            )
            self._error(key, problem.detail)
        if not self.lines:
            self.lines = [LineRow()]
        self.terms = terms
        return terms

    def _errors_of(self, prefix: str, *names: str) -> dict[str, list[str]]:
        return {name: self.errors.get(f"{prefix}-{name}", []) for name in names}

    def line_views(self) -> list[dict[str, Any]]:
        """Each line row with its number, its errors by field and its total."""
        totals = self.terms.line_totals if self.terms else []
        return [
            {
                "n": n,
                "row": row,
                "errors": self._errors_of(
                    f"line-{n}", "description", "quantity", "unit_price", "tax_rate"
                ),
                "focus_id": f"line-{n}-description",
                "total": self.terms.money(totals[n - 1])
                if self.terms and n <= len(totals)
                else None,
            }
            for n, row in enumerate(self.lines, 1)
        ]

    def item_views(self) -> list[dict[str, Any]]:
        """Each schedule row with its number, its errors by field and the amount
        `allocate()` bills for it."""
        amounts = self.terms.amounts if self.terms else []
        return [
            {
                "n": n,
                "row": row,
                "errors": self._errors_of(f"item-{n}", "title", "percentage", "deposit"),
                "focus_id": f"item-{n}-title",
                "amount": self.terms.money(amounts[n - 1])
                if self.terms and n <= len(amounts)
                else None,
                "readable": n <= len(self.item_inputs) and self.item_inputs[n - 1] is not None,
                "first": n == 1,
                "last": n == len(self.items),
            }
            for n, row in enumerate(self.items, 1)
        ]

    @property
    def form_errors(self) -> dict[str, list[str]]:
        """The errors that belong to no one row: the customer, title, currency, the lines
        as a whole, the schedule's total."""
        return {k: v for k, v in self.errors.items() if not k.startswith(("line-", "item-"))}

    @property
    def readable(self) -> bool:
        """Every number could be read: the inputs are complete."""
        return None not in self.line_inputs and None not in self.item_inputs

    @property
    def inclusive(self) -> bool:
        return self.mode == PriceMode.INCLUSIVE

    def prepare(self, user: User, quote: Quote | None, posted_mode: str = "") -> None:
        """What the form needs besides the typed text: the rates to list, the price mode
        (the quote's own, or the business's setting for a new quote; the preview is told
        which by the page) and whether the chosen customer is charged 0 %."""
        chosen = {int(r.tax_rate) for r in self.lines if r.tax_rate.isdigit()}
        self.rates = rates_for_choice({pk for pk in chosen if valid_id(pk)})
        modes = {mode.value for mode in PriceMode}
        if quote is not None:
            self.mode = quote.price_mode
        elif posted_mode in modes:
            self.mode = posted_mode
        else:
            self.mode = business_profile().price_mode
        customer = (
            customer_list(user=user).filter(pk=self.customer_id()).first()
            if self.customer_id() and valid_id(self.customer_id())
            else None
        )
        self.exempt = customer is not None and customer.tax_treatment != TaxTreatment.STANDARD

    def customer_id(self) -> int:
        return int(self.customer) if re.fullmatch(r"[0-9]{1,18}", self.customer) else 0

    def error_sentences(self) -> list[str]:
        return [sentence for sentences in self.errors.values() for sentence in sentences]


def _staff_quote(request: HttpRequest, quote_id: int) -> tuple[User, Quote]:
    user = user_of(request)
    try:
        require_staff(user)
        return user, access_quote(user, quote_id)
    except DomainError:
        raise Http404("No such quote.") from None


def _editor(
    request: HttpRequest,
    form: QuoteForm,
    quote: Quote | None,
    *,
    status: int = 200,
    fresh: bool = False,
) -> HttpResponse:
    if not form.rates:
        form.prepare(user_of(request), quote)
    if form.terms is None:
        form.check()
    customers = list(customer_list(user=user_of(request)).order_by("name", "id"))
    return render(
        request,
        "web/quotes/edit.html",
        {
            "form": form,
            "quote": quote,
            "customers": customers,
            "terms": form.terms,
            "fresh": fresh,
        },
        status=status,
    )


def _save(request: HttpRequest, form: QuoteForm, quote: Quote | None) -> HttpResponse:
    """Save the posted form, or show it again with its errors next to the fields."""
    user = user_of(request)
    form.prepare(user, quote)
    form.check(saving=True)
    if form.readable and not form.errors:
        lines = [line for line in form.line_inputs if line is not None]
        schedule = [item for item in form.item_inputs if item is not None]
        try:
            if quote is None:
                saved = quote_create(
                    actor=user,
                    customer_id=form.customer_id(),
                    title=form.title,
                    currency=form.currency,
                    lines=lines,
                    schedule=schedule,
                )
            else:
                saved = quote_update(
                    actor=user,
                    quote_id=quote.pk,
                    customer_id=form.customer_id(),
                    title=form.title,
                    currency=form.currency,
                    lines=lines,
                    schedule=schedule,
                )
        except DomainError as exc:
            field_name = "customer" if exc.code == "customer_not_found" else "form"
            # Not a row error: the sentence names the line (a rate retired meanwhile).
            form.errors.setdefault(field_name, []).append(
                "Choose the customer this quote is for." if field_name == "customer" else exc.detail
            )
        else:
            done = "saved" if quote else "created"
            messages.success(
                request,
                f"Quote “{saved.title}” {done} as a draft. Send it when it is ready.",
            )
            return redirect("quote", quote_id=saved.pk)
    count = len(form.error_sentences())
    messages.error(
        request,
        f"The quote was not saved: {count} {'problem' if count == 1 else 'problems'} to fix. "
        + " ".join(form.error_sentences()[:3]),
    )
    return _editor(request, form, quote, status=422)


def _rows_changed(data: QueryDict) -> bool:
    return any(
        name in data
        for name in ("add_line", "add_item", "remove_line", "remove_item", "item_up", "item_down")
    )


@login_required
def new_quote(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    try:
        require_staff(user)
    except DomainError:
        raise Http404("No such page.") from None
    if request.method == "POST":
        form = QuoteForm.posted(request.POST)
        if _rows_changed(request.POST):
            return _editor(request, form, None)
        return _save(request, form, None)
    form = QuoteForm(customer=request.GET.get("customer", ""))
    form.prepare(user, None)
    form.check()
    form.errors, form.problems = {}, []  # nothing typed yet: nothing to point out
    return _editor(request, form, None, fresh=True)


@login_required
def edit_quote(request: HttpRequest, quote_id: int) -> HttpResponse:
    _, quote = _staff_quote(request, quote_id)
    if quote.status != QuoteStatus.DRAFT:
        messages.error(
            request,
            f"Quote “{quote.title}” is {quote.get_status_display().lower()}; only a draft "
            "quote can be edited.",
        )
        return redirect("quote", quote_id=quote.pk)
    if request.method == "POST":
        form = QuoteForm.posted(request.POST)
        if _rows_changed(request.POST):
            return _editor(request, form, quote)
        return _save(request, form, quote)
    return _editor(request, QuoteForm.of(quote), quote)


@login_required
@require_POST
def preview(request: HttpRequest) -> HttpResponse:
    """The editor's live summary: totals, each billable item's amount and the errors, from
    the same `quote_terms` the save runs."""
    user = user_of(request)
    try:
        require_staff(user)
    except DomainError:
        raise Http404("No such page.") from None
    form = QuoteForm.posted(request.POST)
    form.prepare(user, None, request.POST.get("price_mode", ""))
    form.check()
    return render(request, "web/quotes/_summary.html", {"form": form, "terms": form.terms})


# --- one quote -----------------------------------------------------------------------------


@login_required
def quote(request: HttpRequest, quote_id: int) -> HttpResponse:
    user = user_of(request)
    try:
        found = access_quote(user, quote_id)
    except NotFound:
        raise Http404("No such quote.") from None
    if user.is_customer:
        return quote_portal.quote_page(request, found)
    terms = quote_terms_of(found)
    return render(
        request,
        "web/quotes/detail.html",
        {
            "quote": found,
            "terms": terms,
            "business_name": business_profile().name,
            # Without JavaScript a confirmation opens as part of the page (?confirm=…).
            "confirm": request.GET.get("confirm", ""),
            "rows": [
                (i, terms.money(a))
                for i, a in zip(found.schedule.all(), terms.amounts, strict=False)
            ],
            "events": quote_events(found),
            "milestone_count": len(found.schedule.all()),
            "waiting": found.status in (QuoteStatus.DRAFT, QuoteStatus.SENT),
        },
    )


@login_required
@require_POST
def send(request: HttpRequest, quote_id: int) -> HttpResponse:
    user, found = _staff_quote(request, quote_id)
    customer: Customer = found.customer
    act(
        request,
        lambda: quote_send(actor=user, quote_id=found.pk),
        f"Quote “{found.title}” sent to {customer.billing_email}: they can read and accept "
        "it in the portal.",
    )
    return redirect("quote", quote_id=found.pk)


@login_required
@require_POST
def accept(request: HttpRequest, quote_id: int) -> HttpResponse:
    user = user_of(request)
    if user.is_customer:
        return quote_portal.accept_online(request, quote_id)
    user, found = _staff_quote(request, quote_id)
    act(
        request,
        lambda: quote_accept(actor=user, quote_id=found.pk),
        f"Quote “{found.title}” accepted on the customer's behalf: its project has been created.",
    )
    return redirect("quote", quote_id=found.pk)


@login_required
@require_POST
def decline(request: HttpRequest, quote_id: int) -> HttpResponse:
    user = user_of(request)
    if user.is_customer:
        return quote_portal.decline_online(request, quote_id)
    user, found = _staff_quote(request, quote_id)
    act(
        request,
        lambda: quote_decline(actor=user, quote_id=found.pk, reason=request.POST.get("reason", "")),
        f"Quote “{found.title}” declined.",
    )
    return redirect("quote", quote_id=found.pk)


urlpatterns = [
    path("quotes/", quotes, name="quotes"),
    path("quotes/new", new_quote, name="quote-new"),
    path("quotes/preview", preview, name="quote-preview"),
    path("quotes/<int:quote_id>/", quote, name="quote"),
    path("quotes/<int:quote_id>/edit", edit_quote, name="quote-edit"),
    path("quotes/<int:quote_id>/send", send, name="quote-send"),
    path("quotes/<int:quote_id>/accept", accept, name="quote-accept"),
    path("quotes/<int:quote_id>/decline", decline, name="quote-decline"),
]
