"""The home page: staff get the dashboard (position per currency, aging, the 12-month
chart as SVG, the five most urgent things); a customer gets her own balance, next
payment and anything overdue, each with a Pay button."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.report_data import drafts, paid, project_with, sent
from tests.factories import CustomerFactory, make_quote
from tests.web.test_customer_wording import STAFF_ONLY
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.billing.services.reminders import invoices_tick
from tranche.notifications.quotes import quote_send

pytestmark = pytest.mark.django_db


def now() -> datetime:
    return timezone.now().astimezone(UTC)


def text(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def books(admin: User, customer_a: Customer, customer_b: Customer) -> dict[str, Any]:
    """Acme owes 250.00 overdue by 26 days and 250.00 not yet due, paid 250.00 today and
    has a draft; Globex owes 1500.00 overdue by 96 days; Globex also has a yen draft."""
    kitchen = project_with(admin, customer_a, title="Kitchen")
    k1, k2, k3, k4 = drafts(kitchen, admin)
    late = sent(k1, admin, days_ago=40, now=now())
    upcoming = sent(k2, admin, days_ago=1, now=now())
    settled = paid(sent(k3, admin, days_ago=3, now=now()), admin, on=now())
    studio = project_with(admin, customer_b, milestones=2, total="3000.00", title="Studio")
    s1, _s2 = drafts(studio, admin)
    very_late = sent(s1, admin, days_ago=110, now=now())
    tokyo = project_with(admin, customer_b, milestones=1, total="70000", currency="JPY")
    [yen] = drafts(tokyo, admin)
    return {
        "late": late,
        "upcoming": upcoming,
        "paid": settled,
        "draft": k4,
        "very_late": very_late,
        "yen": yen,
        "kitchen": kitchen,
    }


def test_staff_see_the_position_per_currency_with_aging(staff: User, books: dict[str, Any]) -> None:
    page = text(signed_in(staff).get("/"))
    assert "<h1>Dashboard</h1>" in page
    assert '<h2 id="position-USD">In USD</h2>' in page
    assert '<h2 id="position-JPY">In JPY</h2>' in page
    assert "<span>Outstanding</span><strong>$2,000.00</strong>" in page
    assert "<span>Overdue</span><strong>$1,750.00</strong>" in page
    assert "<span>Paid this month</span><strong>$250.00</strong>" in page
    assert "2 drafts</a> · $1,750.00" in page  # k4, the studio's second step
    assert '<td class="num" data-label="1 to 30 days">$250.00</td>' in page
    assert '<td class="num" data-label="Over 90 days">$1,500.00</td>' in page
    assert "1 draft</a> · ¥70,000" in page


def test_the_five_most_urgent_things_link_to_their_invoices(
    staff: User, books: dict[str, Any]
) -> None:
    page = text(signed_in(staff).get("/"))
    urgent = page.split('<ol class="urgent-list">')[1].split("</ol>")[0]
    links = re.findall(r'href="/invoices/(\d+)/"', urgent)
    very_late, late = books["very_late"], books["late"]
    assert links[:2] == [str(very_late.pk), str(late.pk)]
    assert len(links) == 5
    assert "96 days overdue" in urgent
    assert f"Review the draft for {books['draft'].customer_name}" in urgent


def test_the_chart_is_server_rendered_svg_with_its_numbers_in_a_table(
    admin: User, books: dict[str, Any]
) -> None:
    browser = signed_in(admin)
    page = text(browser.get("/"))
    svg = page.split("<svg")[1].split("</svg>")[0]
    assert 'role="img"' in svg
    assert 'aria-labelledby="chart-svg-title"' in svg
    assert '<title id="chart-svg-title">Bar chart of the amounts invoiced and paid in USD' in svg
    assert svg.count('class="bar-invoiced"') == 12
    assert svg.count('class="bar-paid"') == 12
    assert "style=" not in page  # the CSP forbids inline styles
    table = page.split("<caption>Invoiced and paid per month, USD</caption>")[1]
    today = timezone.localdate()
    this_month = sum(
        books[name].amount
        for name in ("late", "upcoming", "paid", "very_late")
        if books[name].issue_date.replace(day=1) == today.replace(day=1)
    )
    month = today.strftime("%B %Y")
    assert f'<th scope="row">{month}</th><td>${this_month:,.2f}</td><td>$250.00</td>' in table

    assert '<select id="chart-currency" name="currency">' in page
    yen = text(browser.get("/?currency=JPY"))
    assert "Invoiced and paid, last 12 months (JPY)" in yen
    assert "Nothing invoiced or paid in JPY in the last 12 months." in yen
    assert "(USD)" in text(browser.get("/?currency=XXX"))


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured.captured_queries)


def test_the_dashboard_costs_the_same_queries_with_one_invoice_or_fifty(
    admin: User, customer_a: Customer
) -> None:
    browser = signed_in(admin)
    small = project_with(admin, customer_a, milestones=1, total="100.00")
    [only] = drafts(small, admin)
    sent(only, admin, days_ago=30, now=now())
    one = _queries(browser)
    big = project_with(admin, CustomerFactory.create(), milestones=50, total="5000.00")
    for n, invoice in enumerate(drafts(big, admin)[:25]):
        paid(sent(invoice, admin, days_ago=n * 12, now=now(), tick=False), admin, on=now())
    invoices_tick(now=now())
    assert _queries(browser) == one


# --- the customer home --------------------------------------------------------------------


def test_a_customer_home_shows_her_balance_next_payment_and_overdue_with_pay_buttons(
    alice: User, books: dict[str, Any]
) -> None:
    page = text(signed_in(alice).get("/"))
    late, upcoming = books["late"], books["upcoming"]
    assert '<p class="balance-amounts"><strong>$500.00</strong></p>' in page
    assert "Overdue (1)" in page
    assert f'<a class="button" href="{late.payment_link}"' in page
    assert f'aria-label="Pay $250.00 for invoice {late.number}">Pay $250.00</a>' in page
    next_payment = page.split('id="next-title"')[1]
    assert f"invoice {upcoming.number}" in next_payment
    assert f'href="{upcoming.payment_link}"' in next_payment
    assert f'href="/projects/{books["kitchen"].pk}/">Kitchen</a>' in page
    assert 'href="/financials/">All your invoices and payments</a>' in page


def test_a_customer_home_shows_nothing_of_another_customer_nor_staff_words(
    alice: User, bob: User, books: dict[str, Any]
) -> None:
    page = text(signed_in(alice).get("/"))
    very_late = books["very_late"]
    assert very_late.number not in page
    assert very_late.payment_link not in page
    assert "Studio" not in page
    assert "¥" not in page
    assert [words for words in STAFF_ONLY if words in page] == []
    assert "Dashboard" not in page

    theirs = text(signed_in(bob).get("/"))
    assert '<p class="balance-amounts"><strong>$1,500.00</strong></p>' in theirs
    assert books["late"].number not in theirs


def test_a_customer_with_nothing_due_is_told_so(
    admin: User, customer_a: Customer, alice: User
) -> None:
    page = text(signed_in(alice).get("/"))
    assert "You are all paid up." in page
    assert "Nothing else is due right now." in page
    assert "Overdue" not in page


def test_a_customer_home_costs_the_same_queries_with_one_invoice_or_fifty(
    admin: User, alice: User, customer_a: Customer
) -> None:
    browser = signed_in(alice)
    small = project_with(admin, customer_a, milestones=1, total="100.00")
    [only] = drafts(small, admin)
    sent(only, admin, days_ago=30, now=now())
    one = _queries(browser)
    big = project_with(admin, customer_a, milestones=50, total="5000.00")
    for n, invoice in enumerate(drafts(big, admin)):
        sent(invoice, admin, days_ago=n * 2, now=now(), tick=False)
    invoices_tick(now=now())
    assert _queries(browser) == one


def test_a_customer_home_lists_the_quotes_waiting_for_her_answer_and_only_hers(
    admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    waiting = make_quote(actor=admin, customer=customer_a, title="Garden studio")
    quote_send(actor=admin, quote_id=waiting.pk)
    make_quote(actor=admin, customer=customer_a, title="Still a draft")
    theirs = make_quote(actor=admin, customer=customer_b, title="Globex lobby")
    quote_send(actor=admin, quote_id=theirs.pk)

    page = text(signed_in(alice).get("/"))

    assert "Quotes waiting for your answer" in page
    assert f'href="/quotes/{waiting.pk}/"' in page
    assert "Garden studio" in page
    assert "Still a draft" not in page
    assert "Globex lobby" not in page
