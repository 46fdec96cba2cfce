"""The reads cost a fixed number of queries, whatever the data size and page length
(issue 11): GET /api/invoices (first page and a cursor page) and /financials/ at most 5,
a project's financials (its API and its page's financials tab) at most 5, every page of
the customer portal at most 10.

What is counted: the queries of the whole request as the server runs it (the page's
header included), less authentication's, the same for every page: the session and its
user, or the bearer token with its user, and for staff the two two-factor checks (a
confirmed device, the business's requirement). Those are asserted apart: at most four,
and the same with one row or fifty. Each page is asked once to warm up, then counted;
first with one row of everything it lists, then with fifty (the API's page length is
50; a page of the portal lists up to its page size): the count must not change, and
must be within the budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.change_order_helpers import change_order, line
from tests.factories import make_project, make_quote
from tests.helpers import Api
from tests.helpers import Response as ApiResponse
from tranche.accounts.models import Customer, User
from tranche.accounts.services import token_create
from tranche.billing.models import Invoice
from tranche.billing.selectors import _encode_cursor
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.notifications.change_orders import change_order_send
from tranche.notifications.quotes import quote_send
from tranche.projects.models import ChangeOrder, Project

pytestmark = pytest.mark.django_db

FINANCIALS_BUDGET = 5
PROJECT_FINANCIALS_BUDGET = 5
PORTAL_BUDGET = 10
ROWS = 50  # the most rows a page shows (the API's limit=50)


@dataclass
class Portfolio:
    """Customer A's business with the firm: `rows` projects, each with a sent, part-paid,
    part-credited invoice, and one long project billed milestone by milestone."""

    admin: User
    customer: Customer
    long_project: Project
    change_order: ChangeOrder
    invoices: list[Invoice] = field(default_factory=list)
    rows: int = 0

    def grow_to(self, rows: int) -> None:
        while self.rows < rows:
            self.rows += 1
            self._one_more()

    def _one_more(self) -> None:
        admin, n = self.admin, self.rows
        project = make_project(
            actor=admin, customer=self.customer, title=f"Job {n:02d}", percentages=("100",)
        )
        invoice = self._bill(project, 1)
        payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("100.00"),
            method="bank_transfer",
            received_on=timezone.localdate(),
        )
        credit_note_issue(
            actor=admin, invoice_id=invoice.pk, amount=Decimal("10.00"), reason="Goodwill"
        )
        self._bill(self.long_project, n)

    def _bill(self, project: Project, position: int) -> Invoice:
        milestone = project.milestones.get(position=position)
        done = milestone_complete(
            actor=self.admin, project_id=project.pk, milestone_id=milestone.pk
        )
        assert done.invoice is not None
        sent = invoice_send(actor=self.admin, invoice_id=done.invoice.pk)
        self.invoices.append(sent)
        return sent


@pytest.fixture
def portfolio(admin: User, customer_a: Customer) -> Portfolio:
    # Fifty milestones of 2 %, from a quote the customer was sent (she may open it).
    quote = make_quote(
        actor=admin,
        customer=customer_a,
        title="Long build",
        total="10000.00",
        percentages=("2",) * ROWS,
    )
    quote_send(actor=admin, quote_id=quote.pk)
    long_project = quote_accept(actor=admin, quote_id=quote.pk)
    order = change_order(long_project, admin, line("Build", "11000.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    built = Portfolio(admin, customer_a, long_project, order)
    built.grow_to(1)
    return built


def count_queries(client: Client | Api, path: str) -> list[str]:
    """The queries of one request of `path`, after a warm-up request of it."""
    first = client.get(path)
    assert _status(first) == 200, (path, _status(first))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert _status(response) == 200, path
    return [q["sql"] for q in queries.captured_queries]


def _status(response: Any) -> int:
    return int(response.status if isinstance(response, ApiResponse) else response.status_code)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Authentication's queries, whatever the page (see the module's docstring).
AUTH = (
    'FROM "django_session"',
    '"accounts_apitoken"',
    'FROM "otp_totp_totpdevice"',
    '"accounts_business"."require_two_factor_for_admins") LIMIT 1',
    'FROM "accounts_user" WHERE "accounts_user"."id" = ',
)
AUTH_BUDGET = 4


def is_auth(sql: str) -> bool:
    return any(marker in sql for marker in AUTH)


def assert_flat_and_within(
    portfolio: Portfolio, paths: Callable[[], dict[str, tuple[Client | Api, int]]]
) -> None:
    """Each path's queries with one row, then with ROWS rows: as many, and in budget."""
    with_one = [count_queries(c, p) for p, (c, _budget) in paths().items()]
    portfolio.grow_to(ROWS)
    asked = paths()
    with_many = [count_queries(c, p) for p, (c, _budget) in asked.items()]
    pages = {p: [q for q in sql if not is_auth(q)] for p, sql in zip(asked, with_many, strict=True)}
    over = {p: sql for p, sql in pages.items() if len(sql) > asked[p][1]}
    assert over == {}, "over budget:\n" + "\n".join(
        f"{p} ({len(sql)} > {asked[p][1]}):\n  " + "\n  ".join(sql) for p, sql in over.items()
    )
    auth = {p: sum(map(is_auth, sql)) for p, sql in zip(asked, with_many, strict=True)}
    assert max(auth.values()) <= AUTH_BUDGET, auth
    # Paths may name a row that changed (the cursor names the newest invoice): in order.
    assert [len(sql) for sql in with_one] == [len(sql) for sql in with_many], {
        p: (len(one), len(many)) for p, one, many in zip(asked, with_one, with_many, strict=True)
    }


def test_the_financials_reads_cost_the_same_few_queries_with_one_invoice_or_fifty(
    portfolio: Portfolio, admin: User
) -> None:
    api = Api(token_create(user=admin))
    staff_pages = signed_in(admin)
    project = portfolio.long_project

    def paths() -> dict[str, tuple[Client | Api, int]]:
        newest = max(i.pk for i in portfolio.invoices)
        return {
            "/api/invoices?limit=50": (api, FINANCIALS_BUDGET),
            # A cursor page: the newest one's cursor, so it lists all but that one.
            f"/api/invoices?limit=50&cursor={_encode_cursor(newest)}": (api, FINANCIALS_BUDGET),
            "/api/invoices?limit=50&status=partially_paid": (api, FINANCIALS_BUDGET),
            "/financials/": (staff_pages, FINANCIALS_BUDGET),
            f"/api/projects/{project.pk}/invoices": (api, PROJECT_FINANCIALS_BUDGET),
            f"/projects/{project.pk}/financials": (staff_pages, PROJECT_FINANCIALS_BUDGET),
        }

    assert_flat_and_within(portfolio, paths)


def test_every_page_of_the_portal_costs_the_same_few_queries_with_one_row_or_fifty(
    portfolio: Portfolio, alice: User
) -> None:
    browser = signed_in(alice)
    project = portfolio.long_project
    invoice = portfolio.invoices[0]

    def paths() -> dict[str, tuple[Client | Api, int]]:
        return {
            "/": (browser, PORTAL_BUDGET),
            "/financials/": (browser, PORTAL_BUDGET),
            f"/invoices/{invoice.pk}/": (browser, PORTAL_BUDGET),
            "/projects/": (browser, PORTAL_BUDGET),
            f"/projects/{project.pk}/": (browser, PORTAL_BUDGET),
            "/credit-notes/": (browser, PORTAL_BUDGET),
            f"/change-orders/{portfolio.change_order.pk}/": (browser, PORTAL_BUDGET),
            "/quotes/": (browser, PORTAL_BUDGET),
            f"/quotes/{project.origin_quote_id}/": (browser, PORTAL_BUDGET),
            "/account/": (browser, PORTAL_BUDGET),
        }

    assert_flat_and_within(portfolio, paths)
