"""The home page: staff see the dashboard, a customer sees her own summary."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from tranche.billing import reports
from tranche.core.money import Money
from tranche.sales.models import QuoteStatus
from tranche.sales.selectors import quote_search
from tranche.web.views.common import user_of

# Quotes waiting for the customer's answer, listed on her home page.
HOME_QUOTES = 5

# The chart's drawing area, in the SVG's own units (it scales to the page's width).
CHART_WIDTH = 720
CHART_TOP = 24
CHART_BASE = 200
SLOT = CHART_WIDTH // 12
BAR = 18


@dataclass(frozen=True)
class Bar:
    x: int
    y: float
    height: float
    value: Money


@dataclass(frozen=True)
class ChartMonth:
    label: str  # "Nov"
    name: str  # "November 2026"
    center: int
    invoiced: Bar
    paid: Bar


def _bar(x: int, value: Money, top: Money) -> Bar:
    span = CHART_BASE - CHART_TOP
    height = 0.0 if top.amount <= 0 else round(float(value.amount / top.amount) * span, 1)
    height = max(height, 0.0)
    return Bar(x, round(CHART_BASE - height, 1), height, value)


def chart_of(bars: list[reports.MonthBar]) -> tuple[list[ChartMonth], Money | None]:
    """Where each month's two bars go: heights relative to the largest value shown."""
    if not bars:
        return [], None
    currency = bars[0].invoiced.currency
    top = max([b.invoiced for b in bars] + [b.paid for b in bars], default=Money.zero(currency))
    months = []
    for n, bar in enumerate(bars):
        left = n * SLOT + (SLOT - 2 * BAR - 4) // 2
        months.append(
            ChartMonth(
                label=bar.month.strftime("%b"),
                name=bar.month.strftime("%B %Y"),
                center=n * SLOT + SLOT // 2,
                invoiced=_bar(left, bar.invoiced, top),
                paid=_bar(left + BAR + 4, bar.paid, top),
            )
        )
    return months, top


def _busiest(dashboard: reports.Dashboard) -> str:
    """The currency to chart first: the one with the most months of activity."""
    if not dashboard.currencies:
        return ""
    active = {
        currency: sum(1 for bar in bars if bar.invoiced.amount or bar.paid.amount)
        for currency, bars in dashboard.chart.items()
    }
    return max(dashboard.currencies, key=lambda c: (active.get(c, 0), c == "USD"))


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    now = timezone.now()
    if user.is_customer:
        waiting = list(quote_search(user=user, status=QuoteStatus.SENT)[:HOME_QUOTES])
        return render(
            request,
            "web/home.html",
            {"home": reports.customer_home(user=user, now=now), "quotes_waiting": waiting},
        )
    dashboard = reports.staff_dashboard(now=now)
    currencies = dashboard.currencies
    wanted = request.GET.get("currency", "")
    currency = wanted if wanted in currencies else _busiest(dashboard)
    months, top = chart_of(dashboard.chart.get(currency, []))
    return render(
        request,
        "web/dashboard/dashboard.html",
        {
            "dashboard": dashboard,
            "currency": currency,
            "months": months,
            "top": top,
            "chart": {"width": CHART_WIDTH, "base": CHART_BASE, "top": CHART_TOP, "bar": BAR},
        },
    )
